/* SPDX-License-Identifier: MIT */
/*
 * Object census and referrer chains inside the interpreter (see heapwalk.h).
 *
 * Finding the collector's lists. gc.get_objects() would build a list of every tracked object
 * (5 million objects: a 40 MB list and a pause we cannot bound), so the census walks the
 * generation lists itself. Their heads live in the collector's state (`struct
 * _gc_runtime_state`: in _PyRuntime up to 3.8, in the interpreter state from 3.9), which is
 * internal and moved between versions; but from `generations` on, the structure is the same in
 * every version from 3.8 to 3.13 (checked against each one's internal/pycore_gc.h, and
 * pycore_pymem.h for 3.8; 3.13's incremental collector was reverted before 3.13.0):
 *
 *     struct gc_generation generations[3];     each {PyGC_Head head; int threshold, count}
 *     PyGC_Head *generation0;                  == &generations[0].head
 *     struct gc_generation permanent_generation;
 *     struct gc_generation_stats generation_stats[3];
 *     int collecting;
 *     PyObject *garbage, *callbacks;
 *     Py_ssize_t long_lived_total, long_lived_pending;
 *
 * A newly tracked object is appended at the tail of generation 0, so the `_gc_next` of a list
 * created a moment ago is the head of generation 0, i.e. the start of that structure. We accept
 * it only when it proves itself: generation0 must point to its own first member, the
 * thresholds must equal gc.get_threshold() and gc.garbage must be the collector's garbage
 * list. Anything else (a future layout, a build with another collector) is a refusal with a
 * reason, never a guess. PyGC_Head sits right before the object in all these versions (3.12's
 * managed dict/weakref pre-header comes before it), and `_gc_next` carries no flag bits
 * outside a collection, which we never walk during (`collecting`).
 *
 * Sizes are shallow, as sys.getsizeof() without calling __sizeof__: tp_basicsize, plus
 * Py_SIZE * tp_itemsize for variable-size types, plus a list's item array and the GC header.
 * A dict's or set's table is not included (their layout is internal).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "agent-util.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "census.h"
#include "gilshare.h"
#include "handoff.h"
#include "heapwalk.h"
#include "pages.h"

typedef struct gc_head {
        uintptr_t next; /* the next object's gc_head; 0: not tracked */
        uintptr_t prev; /* low two bits are flags */
} gc_head;

struct gc_generation_mirror {
        gc_head head;
        int threshold;
        int count;
};

struct gc_state_mirror {
        struct gc_generation_mirror generations[3];
        gc_head *generation0;
        struct gc_generation_mirror permanent_generation;
        Py_ssize_t generation_stats[3][3];
        int collecting;
        PyObject *garbage;
        PyObject *callbacks;
        Py_ssize_t long_lived_total;
        Py_ssize_t long_lived_pending;
};

_Static_assert(sizeof(gc_head) == 2 * sizeof(void *), "PyGC_Head is two words from 3.8 on");

/* Check every this many objects whether the deadline passed: a clock read costs ~20 ns, an
 * object ~5-20 ns, so the check costs under 1 % and overshoots by well under a millisecond. */
#define CLOCK_EVERY 1024

static PyObject *threshold_fn, *gc_module;

/* The gc module (imported once and kept), or NULL with an exception set. */
static PyObject *gc_mod(void) {
        if (!gc_module)
                gc_module = PyImport_ImportModule("gc");
        return gc_module;
}

/* The collector's state, proven (see the top of the file), or NULL with *ret_error. */
static struct gc_state_mirror *locate_gc_state(const char **ret_error) {
        struct gc_state_mirror *st;
        PyObject *probe, *thresholds = NULL, *garbage = NULL;
        gc_head *h;
        bool ok = false;

        probe = PyList_New(0);
        if (!probe) {
                PyErr_Clear();
                *ret_error = "out of memory";
                return NULL;
        }
        h = (gc_head *) probe - 1;
        st = (struct gc_state_mirror *) h->next; /* generations[0].head is the structure's start */
        Py_DECREF(probe);

        if (!threshold_fn)
                threshold_fn = gc_mod() ? HW_GETATTR(gc_module, "get_threshold") : NULL;
        if (threshold_fn)
                thresholds = PyObject_CallObject(threshold_fn, NULL);
        garbage = gc_mod() ? HW_GETATTR(gc_module, "garbage") : NULL;
        if (st && st->generation0 == &st->generations[0].head && thresholds && PyTuple_Check(thresholds) &&
            PyTuple_GET_SIZE(thresholds) == 3 && garbage && st->garbage == garbage) {
                ok = true;
                for (int i = 0; i < 3; i++) {
                        long v = PyLong_AsLong(PyTuple_GET_ITEM(thresholds, i));
                        if (v != st->generations[i].threshold)
                                ok = false;
                }
        }
        if (PyErr_Occurred())
                PyErr_Clear();
        Py_XDECREF(thresholds);
        Py_XDECREF(garbage);
        if (!ok) {
                *ret_error = "the interpreter's collector state has an unknown layout";
                return NULL;
        }
        if (st->collecting) {
                *ret_error = "a garbage collection is running";
                return NULL;
        }
        return st;
}

static bool is_head(const struct gc_state_mirror *st, const gc_head *g) {
        return g == &st->generations[0].head || g == &st->generations[1].head || g == &st->generations[2].head ||
               g == &st->permanent_generation.head;
}

static inline uint64_t shallow_size(PyObject *op, PyTypeObject *tp) {
        uint64_t size = (uint64_t) tp->tp_basicsize + sizeof(gc_head);

        if (tp->tp_itemsize != 0) {
                Py_ssize_t n = Py_SIZE(op);
                size += (uint64_t) (n < 0 ? -n : n) * (uint64_t) tp->tp_itemsize;
        }
        if (tp == &PyList_Type)
                size += (uint64_t) ((PyListObject *) op)->allocated * sizeof(PyObject *);
        return size;
}

void hw_heapwalk_type_name(PyTypeObject *tp, char *buf, size_t size) {
        if (tp->tp_flags & Py_TPFLAGS_HEAPTYPE) {
                PyHeapTypeObject *ht = (PyHeapTypeObject *) tp;
                const char *q = ht->ht_qualname && PyUnicode_Check(ht->ht_qualname) ?
                                        PyUnicode_AsUTF8(ht->ht_qualname) :
                                        NULL;
                PyObject *mod = tp->tp_dict ? PyDict_GetItemString(tp->tp_dict, "__module__") : NULL;
                const char *m = mod && PyUnicode_Check(mod) ? PyUnicode_AsUTF8(mod) : NULL;

                if (PyErr_Occurred())
                        PyErr_Clear();
                if (q && m && strcmp(m, "builtins") != 0)
                        snprintf(buf, size, "%s.%s", m, q);
                else
                        snprintf(buf, size, "%s", q ? q : tp->tp_name);
                return;
        }
        snprintf(buf, size, "%s", tp->tp_name);
}

static Py_ssize_t collections_total(const struct gc_state_mirror *st) {
        return st->generation_stats[0][0] + st->generation_stats[1][0] + st->generation_stats[2][0];
}

int hw_heapwalk_census_slice(struct hw_census_walk *w, struct hw_census_table *table, double deadline,
                             const char **ret_error) {
        static const int order[] = { 2, 1, 0, -1 }; /* oldest first: that is where leaks live */
        struct gc_state_mirror *st = locate_gc_state(ret_error);
        PyObject *resume = w->at, *stop_at = NULL;
        gc_head *from = NULL;
        int r = 1;

        if (!st)
                return -EAGAIN;
        if (w->slices++ == 0)
                w->collections = collections_total(st);
        else if (collections_total(st) != w->collections)
                w->consistent = false;
        w->st = st;

        if (resume) {
                /* We kept a reference, so it is alive; if it is no longer tracked the walk cannot
                 * go on from it: what was seen stands, as a partial census. */
                from = (gc_head *) resume - 1;
                if (from->next == 0) {
                        w->broken = true;
                        goto finish;
                }
        }
        for (; w->k < HW_ELEMENTSOF(order); w->k++) {
                gc_head *head = order[w->k] < 0 ? &st->permanent_generation.head : &st->generations[order[w->k]].head;
                gc_head *g = from ? (gc_head *) from->next : (gc_head *) head->next;

                from = NULL;
                for (; !is_head(st, g); g = (gc_head *) g->next) {
                        PyObject *op = (PyObject *) (g + 1);
                        PyTypeObject *tp = Py_TYPE(op);

                        /* a strong reference to every type counted, until the census ends
                         * (hw_heapwalk_census_abandon()): its name is read at the end, and
                         * between slices the GIL is released and the type may die */
                        if (hw_census_table_add(table, tp, shallow_size(op, tp)))
                                Py_INCREF(tp);
                        if (++w->seen % CLOCK_EVERY == 0 && hw_now_monotonic() >= deadline) {
                                stop_at = op;
                                r = 0;
                                goto finish;
                        }
                }
        }
finish:
        /* the new cursor first, then let go of the old one (the host may have dropped it while
         * the GIL was released: ours may be the last reference) */
        Py_XINCREF(stop_at);
        w->at = stop_at;
        hw_handoff_release(resume, w->hand_off);
        return w->broken ? 1 : r;
}

void hw_heapwalk_census_finish(struct hw_census_walk *w, const struct hw_census_table *table, unsigned top,
                               struct hw_census_result *res) {
        struct hw_census_entry best[HW_CENSUS_TOP_MAX];
        struct gc_state_mirror *st = w->st;
        double estimate;
        size_t n;

        res->objects_seen = w->seen;
        res->complete = !w->at && !w->broken;
        res->sampled = !res->complete;
        res->consistent = w->consistent;
        res->fraction = 1.0;
        if (!res->complete && st) {
                /* The collector's own estimate of what it tracks: objects that survived the last
                 * full collection, those promoted since, and generation 0's allocations. */
                estimate = (double) st->long_lived_total + (double) st->long_lived_pending +
                           (double) (st->generations[0].count > 0 ? st->generations[0].count : 0);
                res->fraction = estimate > (double) w->seen ? (double) w->seen / estimate : 0.99;
        }
        if (res->fraction <= 0)
                res->fraction = 1.0;
        res->objects_total = (uint64_t) ((double) w->seen / res->fraction + 0.5);
        res->types_total = table->used + (table->overflow_count > 0);

        if (top > HW_CENSUS_TOP_MAX)
                top = HW_CENSUS_TOP_MAX;
        n = hw_census_table_top(table, top, best);
        for (size_t i = 0; i < n; i++) {
                struct hw_census_type *t = &res->types[i];

                /* the type objects are alive: the table holds a reference to each */
                hw_heapwalk_type_name((PyTypeObject *) best[i].key, t->name, sizeof(t->name));
                t->count = (uint64_t) ((double) best[i].count / res->fraction + 0.5);
                t->size_bytes = (uint64_t) ((double) best[i].size_bytes / res->fraction + 0.5);
        }
        res->n_types = n;
}

void hw_heapwalk_census_abandon(struct hw_census_walk *w, struct hw_census_table *table) {
        PyObject *at = w->at;

        w->at = NULL;
        hw_handoff_release(at, w->hand_off);
        /* last: a type's last reference may run finalizers (its dict's values), and nothing is
         * being walked any more */
        for (size_t i = 0; i < table->capacity; i++)
                if (table->slots[i].key) {
                        PyObject *tp = (PyObject *) table->slots[i].key;

                        table->slots[i].key = NULL;
                        hw_handoff_release(tp, w->hand_off);
                }
        table->used = 0;
}

/* ---- Finalizers among the collected (see heapwalk.h) --------------------------------------- */

static struct gc_state_mirror *fin_state; /* found by hw_heapwalk_finalizers_init() */
static struct {
        bool active;      /* this collection is being counted */
        int generation;
        PyObject *tail;   /* the older generation's last object at "start" (a reference); NULL:
                           * that generation was empty */
        uint64_t young;   /* objects with a finalizer in the young generations at "start" */
        uint64_t seen[2]; /* collections of generation 0 and 1 seen, to count one in every few */
} fin;

static inline bool has_finalizer(PyTypeObject *tp) {
        return tp->tp_finalize != NULL || tp->tp_del != NULL;
}

int hw_heapwalk_finalizers_init(const char **ret_error) {
        struct gc_state_mirror *st = locate_gc_state(ret_error);

        if (!st)
                return -EAGAIN;
        fin_state = st;
        return 0;
}

void hw_heapwalk_finalizers_start(int generation) {
        struct gc_state_mirror *st = fin_state;
        gc_head *old, *last;
        uint64_t n = 0, young = 0;

        fin.active = false;
        Py_CLEAR(fin.tail); /* a "stop" we never saw (the callback removed in between) */
        if (!st || generation < 0 || generation >= 2)
                return;
        /* a sample of the collections is evidence enough (bench/instructions.sh gc_cycles: +0.85 %
         * instructions when every one was counted; generation 1's young generation is ten times
         * generation 0's, so its collections cost as much as all of generation 0's) */
        if (fin.seen[generation]++ % HW_FINALIZERS_EVERY != 0)
                return;
        for (int g = 0; g <= generation; g++) {
                const gc_head *head = &st->generations[g].head;

                for (gc_head *x = (gc_head *) head->next; x != head; x = (gc_head *) x->next) {
                        if (++n > HW_FINALIZERS_WALK_MAX)
                                return;
                        young += has_finalizer(Py_TYPE((PyObject *) (x + 1)));
                }
        }
        fin.young = young;
        fin.generation = generation;
        fin.active = true;
        if (young == 0)
                return; /* none can be collected: no survivors to look at */
        /* gc appends the survivors to the older generation: remember where it ends now (a list
         * head's prev is a plain pointer; an object's carries flags in its low bits) */
        old = &st->generations[generation + 1].head;
        last = (gc_head *) (old->prev & ~(uintptr_t) 3);
        fin.tail = last == old ? NULL : (PyObject *) (last + 1);
        Py_XINCREF(fin.tail); /* an object of the older generation: this collection leaves it alone */
}

void hw_heapwalk_finalizers_stop(struct hw_finalizers *f) {
        struct gc_state_mirror *st = fin_state;
        PyObject *tail = fin.tail;
        const gc_head *old;
        gc_head *x;
        uint64_t n = 0, survivors = 0;
        bool counted = false;

        if (!fin.active) {
                f->skipped++;
                return;
        }
        fin.active = false;
        fin.tail = NULL;
        if (fin.young == 0) {
                f->collections++;
                return;
        }
        old = &st->generations[fin.generation + 1].head;
        /* a tail untracked meanwhile (a finalizer's doing) leaves no way to find the survivors */
        x = tail ? (gc_head *) ((gc_head *) tail - 1)->next : (gc_head *) old->next;
        if (x) {
                /* Stop at any list head, not only the older generation's: gc.freeze() called by
                 * a finalizer during this collection (or by a thread it let run) moves every
                 * list into the permanent generation, and a walk that waited for `old` would
                 * take the permanent generation's head for an object. Then nothing is counted. */
                for (; !is_head(st, x); x = (gc_head *) x->next) {
                        if (++n > HW_FINALIZERS_WALK_MAX)
                                break;
                        survivors += has_finalizer(Py_TYPE((PyObject *) (x + 1)));
                }
                counted = x == old;
        }
        if (counted) {
                f->collected += fin.young > survivors ? fin.young - survivors : 0;
                f->collections++;
        } else
                f->skipped++;
        /* last: its last reference may run a finalizer, and nothing is being walked any more */
        Py_XDECREF(tail);
}

/* ---- Referrer chains ---------------------------------------------------------------------- */

/* The search keeps every object it reached, with the one it came from, in C memory: at most
 * NODES_MAX (24 MiB with the visited set), far more than a 50 ms budget can reach. */
#define NODES_MAX (1u << 19)
#define ROOTS_MAX 16384u
#define FRAMES_PER_THREAD_MAX 64
#define LOCALS_PER_FRAME_MAX 256
#define FANOUT_DEFER 4096   /* containers with more items are explored last */
#define DEFERRED_MAX 1024
#define EXTRA_NODES 4096    /* searched for more roots once every type has a chain */

struct node {
        PyObject *obj;
        int32_t parent; /* index of the node it was reached from; -1 for a root */
        uint32_t root;  /* index into roots */
};

struct root {
        char label[128]; /* 16384 roots: 2 MiB */
        const char *kind;
};

struct search {
        struct node *nodes;
        size_t n_nodes, nodes_capacity;
        PyObject **seen; /* open addressing, grows by doubling up to 2 * NODES_MAX */
        size_t seen_mask, n_seen;
        struct root *roots;
        size_t n_roots;
        PyTypeObject *targets[HW_CHAINS_TYPES_MAX];
        size_t n_targets;
        size_t per_target; /* chains per type */
        size_t found[HW_CHAINS_TYPES_MAX];
        int32_t current; /* node being traversed */
        bool full;
        bool late;        /* the deadline passed */
        double deadline;
        uint64_t visits;
        uint64_t visits_after_enough; /* references looked at since every type had a chain */
        bool enough;
        bool shallow; /* only look at the children for instances; follow nothing */
        const struct hw_holders *holders; /* NULL: no holders to find */
        bool holder_done[HW_HOLDER_ROWS][HW_HOLDERS_PER_TYPE];
        size_t holders_total, holders_found;
        struct hw_census_result *res;
        PyObject *keep; /* a list holding what the roots need alive (frames' locals) */
};

static size_t seen_slot(PyObject *o, size_t mask) {
        return (size_t) ((((uintptr_t) o >> 4) * 0x9E3779B97F4A7C15ull) >> 32) & mask;
}

/* The tables start small and double: a search that reaches a few thousand objects must not pay
 * for page faults on megabytes it never uses (measured: faults were most of its time). */
static bool seen_grow(struct search *s) {
        size_t cap = (s->seen_mask + 1) * 2, mask = cap - 1;
        PyObject **t;

        if (cap > 2 * NODES_MAX)
                return false;
        t = hw_pages_alloc(cap * sizeof(*t));
        if (!t)
                return false;
        for (size_t i = 0; i <= s->seen_mask; i++)
                if (s->seen[i]) {
                        size_t j = seen_slot(s->seen[i], mask);
                        while (t[j])
                                j = (j + 1) & mask;
                        t[j] = s->seen[i];
                }
        hw_pages_free(s->seen, (s->seen_mask + 1) * sizeof(*s->seen));
        s->seen = t;
        s->seen_mask = mask;
        return true;
}

/* Insert; false when already there (or the set is full). */
static bool seen_add(struct search *s, PyObject *o) {
        size_t i;

        if (2 * (s->n_seen + 1) > s->seen_mask + 1 && !seen_grow(s)) {
                s->full = true;
                return false;
        }
        i = seen_slot(o, s->seen_mask);
        for (;;) {
                if (s->seen[i] == o)
                        return false;
                if (!s->seen[i]) {
                        s->seen[i] = o;
                        s->n_seen++;
                        return true;
                }
                i = (i + 1) & s->seen_mask;
        }
}

static void short_type_name(PyTypeObject *tp, char *buf, size_t size) {
        const char *n = tp->tp_name, *dot = strrchr(n, '.');

        if (tp->tp_flags & Py_TPFLAGS_HEAPTYPE) {
                PyHeapTypeObject *ht = (PyHeapTypeObject *) tp;
                const char *q = ht->ht_qualname && PyUnicode_Check(ht->ht_qualname) ?
                                        PyUnicode_AsUTF8(ht->ht_qualname) :
                                        NULL;
                if (PyErr_Occurred())
                        PyErr_Clear();
                snprintf(buf, size, "%s", q ? q : n);
                return;
        }
        snprintf(buf, size, "%s", dot ? dot + 1 : n);
}

/* How `child` is reached from `parent`: a dict key, a sequence index, an attribute of an
 * instance whose __dict__ exists already. "" when we cannot tell cheaply. No Python code runs:
 * dict iteration and identity comparisons only. */
static void edge_label(PyObject *parent, PyObject *child, char *buf, size_t size) {
        buf[0] = '\0';
        if (PyDict_Check(parent)) {
                Py_ssize_t pos = 0;
                PyObject *k, *v;

                while (PyDict_Next(parent, &pos, &k, &v))
                        if (v == child || k == child) {
                                if (PyUnicode_Check(k)) {
                                        const char *u = PyUnicode_AsUTF8(k);
                                        if (u)
                                                snprintf(buf, size, "['%.200s']", u);
                                } else if (PyLong_Check(k))
                                        snprintf(buf, size, "[%lld]", PyLong_AsLongLong(k));
                                break;
                        }
        } else if (PyList_Check(parent) || PyTuple_Check(parent)) {
                Py_ssize_t n = PyList_Check(parent) ? PyList_GET_SIZE(parent) : PyTuple_GET_SIZE(parent);

                /* from the end: that is where tp_traverse of lists and tuples starts, so the
                 * child a search reached first is found at once even in a list of millions */
                for (Py_ssize_t i = n - 1; i >= 0; i--) {
                        PyObject *v = PyList_Check(parent) ? PyList_GET_ITEM(parent, i) : PyTuple_GET_ITEM(parent, i);
                        if (v == child) {
                                snprintf(buf, size, "[%zd]", i);
                                break;
                        }
                }
        }
        if (PyErr_Occurred())
                PyErr_Clear();
}

/* Everything is found that is to be found: every class has a chain (or there are none), every
 * holder has its chain. */
static void update_enough(struct search *s) {
        bool all = s->holders_found >= s->holders_total;

        for (size_t i = 0; i < s->n_targets; i++)
                all = all && s->found[i] > 0;
        s->enough = all;
}

/* Fill c (zeroed by the caller) with the path from the root to parent, then obj. */
static void build_chain(struct search *s, int32_t parent, uint32_t root, PyObject *obj, struct hw_chain *c) {
        int32_t path[HW_CHAIN_STEPS_MAX];
        size_t n = 0;

        /* the path root..parent, then obj; a path longer than the steps we keep loses its start
         * (the nodes nearest to the root) */
        for (int32_t i = parent; i >= 0 && n < HW_CHAIN_STEPS_MAX - 1; i = s->nodes[i].parent)
                path[n++] = i;
        snprintf(c->root, sizeof(c->root), "%s", s->roots[root].label);
        snprintf(c->root_kind, sizeof(c->root_kind), "%s", s->roots[root].kind);
        for (size_t i = 0; i < n; i++) {
                struct node *nd = &s->nodes[path[n - 1 - i]];

                short_type_name(Py_TYPE(nd->obj), c->steps[c->n_steps].type, sizeof(c->steps[0].type));
                if (i > 0)
                        edge_label(s->nodes[path[n - i]].obj, nd->obj, c->steps[c->n_steps].via,
                                   sizeof(c->steps[0].via));
                c->n_steps++;
        }
        short_type_name(Py_TYPE(obj), c->steps[c->n_steps].type, sizeof(c->steps[0].type));
        if (parent >= 0)
                edge_label(s->nodes[parent].obj, obj, c->steps[c->n_steps].via, sizeof(c->steps[0].via));
        c->n_steps++;
}

static void record_chain(struct search *s, int32_t parent, uint32_t root, PyObject *obj, size_t target) {
        struct hw_census_result *res = s->res;
        struct hw_chain *c;

        if (res->n_chains >= HW_CHAINS_MAX || s->found[target] >= s->per_target)
                return;
        /* one chain per root and type: a thousand handlers in one list are one finding */
        for (size_t i = 0; i < res->n_chains; i++)
                if (strcmp(res->chains[i].root, s->roots[root].label) == 0 &&
                    res->chains[i].target[0] == (char) ('0' + target))
                        return;
        c = &res->chains[res->n_chains];
        memset(c, 0, sizeof(*c));
        c->target[0] = (char) ('0' + target); /* replaced by the name at the end */
        c->target[1] = '\0';
        build_chain(s, parent, root, obj, c);
        res->n_chains++;
        s->found[target]++;
        update_enough(s);
}

/* o is one of the holders not reached yet: its chain (the first found is the shortest). Returns
 * whether o is a holder at all (found before or now). */
static bool reach_holder(struct search *s, int32_t parent, uint32_t root, PyObject *o) {
        const struct hw_holders *h = s->holders;
        bool is = false;

        if (!h)
                return false;
        for (size_t t = 0; t < h->n_rows; t++)
                for (size_t k = 0; k < h->n[t]; k++) {
                        if (h->obj[t][k] != o)
                                continue;
                        is = true;
                        if (s->holder_done[t][k])
                                continue;
                        /* res->holders[] is laid out like h: index t * PER_TYPE + k */
                        build_chain(s, parent, root, o, &s->res->holders[t * HW_HOLDERS_PER_TYPE + k]);
                        s->holder_done[t][k] = true;
                        s->holders_found++;
                }
        if (is)
                update_enough(s);
        return is;
}

/* How many references a container holds, for the common ones; 0 for the rest. */
static Py_ssize_t fanout(PyObject *o) {
        if (PyList_Check(o))
                return PyList_GET_SIZE(o);
        if (PyTuple_Check(o))
                return PyTuple_GET_SIZE(o);
        if (PyDict_Check(o))
                return PyDict_GET_SIZE(o);
        if (PyAnySet_Check(o))
                return PySet_GET_SIZE(o);
        return 0;
}

/* Insertion sort of node indices by their object's fanout, smallest first (at most
 * DEFERRED_MAX, and in practice a handful). */
static void sort_by_fanout(const struct search *s, uint32_t *idx, size_t n) {
        for (size_t i = 1; i < n; i++) {
                uint32_t v = idx[i];
                Py_ssize_t f = fanout(s->nodes[v].obj);
                size_t j = i;

                while (j > 0 && fanout(s->nodes[idx[j - 1]].obj) > f) {
                        idx[j] = idx[j - 1];
                        j--;
                }
                idx[j] = v;
        }
}

static int target_of(const struct search *s, PyObject *o) {
        PyTypeObject *tp = Py_TYPE(o);

        for (size_t i = 0; i < s->n_targets; i++)
                if (tp == s->targets[i])
                        return (int) i;
        return -1;
}

static bool add_node(struct search *s, PyObject *o, int32_t parent, uint32_t root) {
        if (s->n_nodes >= s->nodes_capacity) {
                size_t cap = s->nodes_capacity * 2;
                struct node *n = cap <= NODES_MAX ? hw_pages_grow(s->nodes, s->nodes_capacity * sizeof(*n),
                                                                  cap * sizeof(*n))
                                                  : NULL;

                if (!n) {
                        s->full = true;
                        return false;
                }
                s->nodes = n;
                s->nodes_capacity = cap;
        }
        if (!seen_add(s, o))
                return false;
        s->nodes[s->n_nodes++] = (struct node) { .obj = o, .parent = parent, .root = root };
        return true;
}

/* Objects whose references say nothing a user would call a root or a holder: modules (every
 * global would hang off them) and type objects (reached as class attributes roots instead). */
static bool skip_object(PyObject *o) {
        return PyModule_Check(o) || PyType_Check(o);
}

struct first_instance {
        PyTypeObject *tp;
        PyObject *found;
        struct search *s; /* its deadline and clock count */
};

static int first_instance_visit(PyObject *child, void *arg) {
        struct first_instance *f = arg;

        if (child && Py_TYPE(child) == f->tp) {
                f->found = child;
                return 1; /* ends the traversal */
        }
        /* a holder of millions without one: stop when the time is up, as visit() does */
        if (++f->s->visits % CLOCK_EVERY == 0 && hw_now_monotonic() >= f->s->deadline) {
                f->s->late = true;
                return 1;
        }
        return 0;
}

/* The holder at node holds instances of the classes searched for: a chain to one of them through
 * it, at once. Else the search would reach them only when it expands the holder, a container of
 * thousands that is explored last: on a loaded machine the budget can run out first. */
static void chain_through_holder(struct search *s, int32_t node) {
        PyObject *o = s->nodes[node].obj;
        traverseproc trav = Py_TYPE(o)->tp_traverse;

        for (size_t i = 0; trav && i < s->n_targets && !s->late; i++) {
                struct first_instance f = { .tp = s->targets[i], .s = s };

                if (s->found[i] >= s->per_target)
                        continue;
                (void) trav(o, first_instance_visit, &f);
                if (f.found)
                        record_chain(s, node, s->nodes[node].root, f.found, i);
        }
}

static int visit(PyObject *child, void *arg) {
        struct search *s = arg;
        int t;

        if (!child)
                return 0;
        /* a container of millions: stop inside its traversal when the time is up (a non-zero
         * return ends tp_traverse) */
        if (++s->visits % CLOCK_EVERY == 0 && hw_now_monotonic() >= s->deadline) {
                s->late = true;
                return 1;
        }
        /* every type has a chain and we looked a little further: stop inside a big container */
        if (s->enough && ++s->visits_after_enough > EXTRA_NODES)
                return 1;
        /* a holder: its chain is found here, and through it one to an instance of a class it
         * holds; then it is followed like any object */
        if (s->holders_found < s->holders_total && reach_holder(s, s->current, s->nodes[s->current].root, child)) {
                if (add_node(s, child, s->current, s->nodes[s->current].root))
                        chain_through_holder(s, (int32_t) s->n_nodes - 1);
                return s->late ? 1 : 0;
        }
        t = target_of(s, child);
        if (t >= 0) {
                /* not marked seen: a million instances in one list must not fill the set */
                if (s->found[t] < s->per_target)
                        record_chain(s, s->current, s->nodes[s->current].root, child, (size_t) t);
                return 0;
        }
        if (s->shallow || !PyObject_IS_GC(child) || skip_object(child))
                return 0;
        (void) add_node(s, child, s->current, s->nodes[s->current].root);
        return 0;
}

static void add_root(struct search *s, PyObject *value, const char *kind, const char *fmt_a, const char *fmt_b) {
        struct root *r;
        int t;

        if (!value || s->n_roots >= ROOTS_MAX || skip_object(value))
                return;
        r = &s->roots[s->n_roots];
        snprintf(r->label, sizeof(r->label), "%s%s%s", fmt_a, fmt_b[0] ? "." : "", fmt_b);
        r->kind = kind;
        /* the global is itself a holder: a chain of one step */
        if (s->holders_found < s->holders_total && reach_holder(s, -1, (uint32_t) s->n_roots, value)) {
                if (add_node(s, value, -1, (uint32_t) s->n_roots)) {
                        s->n_roots++;
                        chain_through_holder(s, (int32_t) s->n_nodes - 1);
                }
                return;
        }
        t = target_of(s, value);
        if (t >= 0) {
                /* the global is itself an instance: a chain of one step */
                uint32_t root = (uint32_t) s->n_roots++;

                if (seen_add(s, value) && s->found[t] < s->per_target)
                        record_chain(s, -1, root, value, (size_t) t);
                return;
        }
        if (!PyObject_IS_GC(value))
                return;
        if (add_node(s, value, -1, (uint32_t) s->n_roots))
                s->n_roots++;
}

static const char *utf8_or(PyObject *o, const char *dflt) {
        const char *u = o && PyUnicode_Check(o) ? PyUnicode_AsUTF8(o) : NULL;

        if (!u && PyErr_Occurred())
                PyErr_Clear();
        return u ? u : dflt;
}

static void add_module_roots(struct search *s) {
        PyObject *modules = PyImport_GetModuleDict(), *name, *mod;
        Py_ssize_t pos = 0;

        if (!modules || !PyDict_Check(modules))
                return;
        while (PyDict_Next(modules, &pos, &name, &mod)) {
                const char *mname = utf8_or(name, "?");
                PyObject *d, *k, *v;
                Py_ssize_t p2 = 0;

                if (!PyModule_Check(mod))
                        continue;
                d = PyModule_GetDict(mod);
                if (!d)
                        continue;
                while (PyDict_Next(d, &p2, &k, &v)) {
                        const char *key = utf8_or(k, "?");

                        if (key[0] == '_' && key[1] == '_')
                                continue; /* __builtins__, __dict__, __loader__...: not the user's */
                        if (PyType_Check(v)) {
                                /* class attributes, when the class is defined in this module */
                                PyTypeObject *tp = (PyTypeObject *) v;
                                PyObject *tk, *tv, *owner;
                                Py_ssize_t p3 = 0;
                                char label[HW_CHAIN_LABEL_MAX + 1];

                                if (!(tp->tp_flags & Py_TPFLAGS_HEAPTYPE) || !tp->tp_dict)
                                        continue;
                                owner = PyDict_GetItemString(tp->tp_dict, "__module__");
                                if (!owner || strcmp(utf8_or(owner, ""), mname) != 0)
                                        continue;
                                snprintf(label, sizeof(label), "%s.%s", mname, key);
                                while (PyDict_Next(tp->tp_dict, &p3, &tk, &tv)) {
                                        const char *attr = utf8_or(tk, "?");
                                        if (attr[0] == '_' && attr[1] == '_')
                                                continue;
                                        if (PyFunction_Check(tv) || PyType_Check(tv))
                                                continue;
                                        add_root(s, tv, "class_attribute", label, attr);
                                }
                                continue;
                        }
                        add_root(s, v, "module_global", mname, key);
                }
        }
        if (PyErr_Occurred())
                PyErr_Clear();
}

/* A thread's name from threading._active (no code runs but the name property's). */
/* The thread's name from its instance dict ("_name"), not the `name` property: that is Python
 * code (a subclass's, whatever it does) and would run on the sampler thread. */
static void thread_name(PyObject *tid, char *buf, size_t size) {
        PyObject *modules = PyImport_GetModuleDict(), *threading, *active, *th, *dict, *name = NULL;

        snprintf(buf, size, "%lld", PyLong_AsLongLong(tid));
        threading = modules ? PyDict_GetItemString(modules, "threading") : NULL;
        active = threading && PyModule_Check(threading) ? PyDict_GetItemString(PyModule_GetDict(threading), "_active") : NULL;
        th = active && PyDict_CheckExact(active) ? PyDict_GetItem(active, tid) : NULL;
        dict = th ? PyObject_GenericGetDict(th, NULL) : NULL;
        if (dict && PyDict_CheckExact(dict))
                name = PyDict_GetItemString(dict, "_name"); /* borrowed */
        if (name && PyUnicode_CheckExact(name))
                snprintf(buf, size, "%s", utf8_or(name, buf));
        Py_XDECREF(dict);
        if (PyErr_Occurred())
                PyErr_Clear();
}

/* Whether reading this frame's locals runs no host code: a function's frame (CO_OPTIMIZED),
 * whose f_locals is a dict the frame builds (3.13: a FrameLocalsProxy over its variables).
 * The locals of module, class and exec'd code are whatever mapping the host passed (a dict
 * subclass with its own items(), a __prepare__ namespace): reading them ran its Python code
 * on the sampler thread, which stop(), fork and exit wait for -- holding a lock the host's
 * thread held there deadlocked the process (found by review). */
static bool frame_locals_are_plain(PyObject *code) {
        return code && PyCode_Check(code) && (((PyCodeObject *) code)->co_flags & CO_OPTIMIZED);
}

static bool locals_are_plain(PyObject *locals) {
#if PY_VERSION_HEX >= 0x030D0000
        if (PyFrameLocalsProxy_Check(locals))
                return true;
#endif
        return PyDict_CheckExact(locals);
}

/* Each thread's frames' local variables. f_locals makes a mapping (3.11+: a snapshot or a
 * proxy), and items() a list, which allocates: so this runs before anything else, keeping what
 * it made alive in s->keep as (label, items) pairs; add_frame_roots() turns them into roots
 * after the module globals, which name a holder better when both reach it. */
static void collect_frame_locals(struct search *s) {
        PyObject *sys_frames = NULL, *frames = NULL, *tid, *frame;
        Py_ssize_t pos = 0;

        sys_frames = PySys_GetObject("_current_frames"); /* borrowed */
        if (sys_frames)
                frames = PyObject_CallObject(sys_frames, NULL);
        if (!frames || !PyDict_Check(frames))
                goto finish;
        while (PyDict_Next(frames, &pos, &tid, &frame)) {
                PyObject *f = frame;
                char tname[64];

                thread_name(tid, tname, sizeof(tname));
                Py_INCREF(f);
                for (int depth = 0; f && f != Py_None && depth < FRAMES_PER_THREAD_MAX; depth++) {
                        PyObject *code = HW_GETATTR(f, "f_code");
                        /* f_locals itself calls the mapping of module, class or exec'd code */
                        PyObject *locals = frame_locals_are_plain(code) ? HW_GETATTR(f, "f_locals") : NULL;
                        PyObject *globals = HW_GETATTR(f, "f_globals");
                        PyObject *fname = code ? HW_GETATTR(code, "co_name") : NULL;
                        PyObject *back = HW_GETATTR(f, "f_back");
                        PyObject *items = NULL, *pair = NULL;

                        /* module-level code: its locals are the module's globals, named better
                         * as module globals */
                        if (locals && locals != globals && locals_are_plain(locals))
                                items = PyMapping_Items(locals);
                        if (items && PyList_Check(items))
                                pair = Py_BuildValue("(sO)", "", items);
                        if (pair) {
                                char label[HW_CHAIN_LABEL_MAX + 1];
                                PyObject *l;

                                snprintf(label, sizeof(label), "thread %s: %s()", tname, utf8_or(fname, "?"));
                                l = PyUnicode_FromString(label);
                                if (l && PyTuple_SetItem(pair, 0, l) == 0)
                                        (void) PyList_Append(s->keep, pair);
                                else
                                        Py_XDECREF(l);
                        }
                        if (PyErr_Occurred())
                                PyErr_Clear();
                        Py_XDECREF(pair);
                        Py_XDECREF(items);
                        Py_XDECREF(globals);
                        Py_XDECREF(locals);
                        Py_XDECREF(fname);
                        Py_XDECREF(code);
                        Py_DECREF(f);
                        f = back;
                }
                Py_XDECREF(f);
        }
finish:
        if (PyErr_Occurred())
                PyErr_Clear();
        Py_XDECREF(frames);
}

static void add_frame_roots(struct search *s) {
        for (Py_ssize_t k = 0; k < PyList_GET_SIZE(s->keep); k++) {
                PyObject *pair = PyList_GET_ITEM(s->keep, k);
                PyObject *items = PyTuple_GET_ITEM(pair, 1);
                const char *label = utf8_or(PyTuple_GET_ITEM(pair, 0), "thread");

                for (Py_ssize_t i = 0; i < PyList_GET_SIZE(items) && i < LOCALS_PER_FRAME_MAX; i++) {
                        PyObject *kv = PyList_GET_ITEM(items, i);
                        if (PyTuple_Check(kv) && PyTuple_GET_SIZE(kv) == 2)
                                add_root(s, PyTuple_GET_ITEM(kv, 1), "thread_frame", label,
                                         utf8_or(PyTuple_GET_ITEM(kv, 0), "?"));
                }
        }
}

/* "module.Qual.Name" -> the type, looked up in sys.modules' dicts without running any code
 * (no getattr: a module's __getattr__ could do anything). NULL when not found. */
static PyTypeObject *resolve_type(const char *name) {
        PyObject *modules = PyImport_GetModuleDict();
        char buf[HW_CENSUS_TYPE_NAME_MAX + 1];
        size_t len = strlen(name);

        if (!modules || len >= sizeof(buf))
                return NULL;
        /* the longest prefix that names a module, then attributes through type dicts */
        for (size_t cut = len; cut > 0; cut--) {
                PyObject *mod, *cur;
                char *part, *save = NULL;

                if (cut != len && name[cut] != '.')
                        continue;
                memcpy(buf, name, cut);
                buf[cut] = '\0';
                mod = cut == len ? NULL : PyDict_GetItemString(modules, buf);
                if (cut == len || !mod || !PyModule_Check(mod))
                        continue;
                cur = mod;
                memcpy(buf, name + cut + 1, len - cut);
                for (part = strtok_r(buf, ".", &save); part && cur; part = strtok_r(NULL, ".", &save)) {
                        PyObject *d = PyModule_Check(cur) ? PyModule_GetDict(cur) :
                                      PyType_Check(cur)   ? ((PyTypeObject *) cur)->tp_dict :
                                                            NULL;
                        cur = d ? PyDict_GetItemString(d, part) : NULL;
                }
                if (PyErr_Occurred())
                        PyErr_Clear();
                if (cur && PyType_Check(cur))
                        return (PyTypeObject *) cur;
        }
        /* builtins: "list", "dict", and static types named by tp_name */
        {
                PyObject *b = PyDict_GetItemString(modules, "builtins"), *t;
                t = b && PyModule_Check(b) ? PyDict_GetItemString(PyModule_GetDict(b), name) : NULL;
                if (PyErr_Occurred())
                        PyErr_Clear();
                if (t && PyType_Check(t))
                        return (PyTypeObject *) t;
        }
        /* static types builtins does not name, as the census names them ("method", "function",
         * "cell"): the types module's, compared by tp_name */
        {
                PyObject *m = PyDict_GetItemString(modules, "types"), *k, *v;
                Py_ssize_t pos = 0;

                while (m && PyModule_Check(m) && PyDict_Next(PyModule_GetDict(m), &pos, &k, &v))
                        if (PyType_Check(v) && strcmp(((PyTypeObject *) v)->tp_name, name) == 0)
                                return (PyTypeObject *) v;
                if (PyErr_Occurred())
                        PyErr_Clear();
        }
        return NULL;
}

/* ---- Holders: the containers with the most instances of a type ---------------------------- */

/* A container with fewer items is not looked into: it cannot be where thousands are held, and
 * most objects of a heap are small (the pass costs a type check for them). */
#define HOLDER_FANOUT_MIN 8
/* ... nor reported when it holds fewer instances than this. */
#define HOLDER_HOLDS_MIN 8

struct holder_count {
        const struct hw_holders *h;
        uint64_t counts[HW_CHAINS_TYPES_MAX];
        uint64_t visits;
        double deadline;
        bool late;
};

static int holder_visit(PyObject *child, void *arg) {
        struct holder_count *hc = arg;
        PyTypeObject *tp;

        if (!child)
                return 0;
        /* a container of millions: stop inside its traversal when the time is up */
        if (++hc->visits % (16 * CLOCK_EVERY) == 0 && hw_now_monotonic() >= hc->deadline) {
                hc->late = true;
                return 1;
        }
        tp = Py_TYPE(child);
        for (size_t t = 0; t < hc->h->n_targets; t++)
                if (tp == hc->h->targets[t])
                        hc->counts[t]++;
        return 0;
}

/* Keep o among the HW_HOLDERS_PER_TYPE holders of type t with the most instances (borrowed
 * until the pass ends). */
static void holder_offer(struct hw_holders *h, size_t t, PyObject *o, uint64_t holds) {
        size_t k;

        if (holds < HOLDER_HOLDS_MIN)
                return;
        if (h->n[t] == HW_HOLDERS_PER_TYPE && holds <= h->holds[t][HW_HOLDERS_PER_TYPE - 1])
                return;
        k = h->n[t] < HW_HOLDERS_PER_TYPE ? h->n[t]++ : HW_HOLDERS_PER_TYPE - 1;
        while (k > 0 && h->holds[t][k - 1] < holds) {
                h->obj[t][k] = h->obj[t][k - 1];
                h->holds[t][k] = h->holds[t][k - 1];
                k--;
        }
        h->obj[t][k] = o;
        h->holds[t][k] = holds;
}

int hw_heapwalk_holders(const struct hw_request *req, double deadline, struct hw_holders *h, const char **ret_error) {
        static const int order[] = { 2, 1, 0, -1 };
        struct holder_count hc = { .h = h, .deadline = deadline };
        struct gc_state_mirror *st;
        PyTypeObject *deque;

        memset(h, 0, sizeof(*h));
        for (size_t i = 0; i < req->n_types && i < HW_CHAINS_TYPES_MAX; i++) {
                PyTypeObject *tp = resolve_type(req->types[i]);
                if (tp)
                        h->targets[h->n_targets++] = tp;
        }
        /* Without a type that resolves, the largest containers are still looked for: what
         * grows may be nothing the collector tracks (a dict of strings). */
        h->n_rows = h->n_targets + 1; /* the last: the largest containers (targets[] NULL) */
        deque = resolve_type("collections.deque");
        st = locate_gc_state(ret_error);
        if (!st)
                return -EAGAIN;
        /* Nothing below allocates or runs Python code: the lists stay as they are while we walk
         * them, and the pointers kept are valid until the references are taken at the end. */
        h->complete = true;
        for (size_t g = 0; g < HW_ELEMENTSOF(order) && !hc.late; g++) {
                gc_head *head = order[g] < 0 ? &st->permanent_generation.head : &st->generations[order[g]].head;

                for (gc_head *x = (gc_head *) head->next; !is_head(st, x); x = (gc_head *) x->next) {
                        PyObject *op = (PyObject *) (x + 1);
                        Py_ssize_t n = fanout(op);
                        traverseproc trav = Py_TYPE(op)->tp_traverse;

                        if (n == 0 && deque && Py_TYPE(op) == deque)
                                n = Py_SIZE(op);
                        if (++h->seen % CLOCK_EVERY == 0 && hw_now_monotonic() >= deadline)
                                hc.late = true;
                        if (hc.late)
                                break;
                        if (n < HOLDER_FANOUT_MIN || !trav)
                                continue;
                        holder_offer(h, h->n_targets, op, (uint64_t) n);
                        if (h->n_targets == 0)
                                continue;
                        memset(hc.counts, 0, sizeof(hc.counts));
                        (void) trav(op, holder_visit, &hc);
                        if (hc.late)
                                break; /* counted in part: not a fair comparison */
                        for (size_t t = 0; t < h->n_targets; t++)
                                holder_offer(h, t, op, hc.counts[t]);
                }
        }
        if (hc.late)
                h->complete = false;
        for (size_t t = 0; t < h->n_rows; t++)
                for (size_t k = 0; k < h->n[t]; k++)
                        Py_INCREF(h->obj[t][k]);
        return 0;
}

void hw_heapwalk_holders_release(struct hw_holders *h, bool hand_off) {
        for (size_t t = 0; t < h->n_rows; t++) {
                for (size_t k = 0; k < h->n[t]; k++) {
                        PyObject *o = h->obj[t][k];

                        h->obj[t][k] = NULL;
                        hw_handoff_release(o, hand_off);
                }
                h->n[t] = 0;
        }
}

static void chains_search(const struct hw_request *req, const struct hw_holders *h, double deadline,
                          struct hw_census_result *res) {
        struct search s = { .res = res, .deadline = deadline, .holders = h };
        uint32_t deferred[DEFERRED_MAX];
        size_t head = 0, n_deferred = 0, next_deferred = 0, extra_until = 0;
        bool shallow_done = false;
        size_t resolved = 0;

        for (size_t i = 0; i < req->n_types && i < HW_CHAINS_TYPES_MAX; i++) {
                PyTypeObject *tp = resolve_type(req->types[i]);

                resolved += tp != NULL;
                /* with holders, sample instances only of classes (see heapwalk.h) */
                if (tp && (!h || (tp->tp_flags & Py_TPFLAGS_HEAPTYPE)))
                        s.targets[s.n_targets++] = tp;
        }
        if (h) {
                for (size_t t = 0; t < h->n_rows; t++) {
                        for (size_t k = 0; k < h->n[t]; k++) {
                                struct hw_chain *c = &res->holders[t * HW_HOLDERS_PER_TYPE + k];

                                memset(c, 0, sizeof(*c));
                                if (h->targets[t])
                                        hw_heapwalk_type_name(h->targets[t], c->target, sizeof(c->target));
                                else
                                        snprintf(c->target, sizeof(c->target), HW_HOLDERS_ANY);
                                c->holds = h->holds[t][k];
                        }
                        s.holders_total += h->n[t];
                }
        }
        /* with holders there are the largest containers to report, whatever the types */
        if (resolved == 0 && !h) {
                res->error = "none of the types was found";
                goto compact;
        }
        if (s.n_targets == 0 && s.holders_total == 0) {
                res->search_complete = true; /* nothing to look for: no class, no holder */
                goto compact;
        }
        /* keep the request's order for names, but only the resolved ones */
        s.per_target = s.n_targets > 0 ? HW_CHAINS_MAX / s.n_targets : 0;

        s.nodes_capacity = 4096;
        /* The tables come from the kernel, not the host's malloc (pages.h); the roots' 2 MiB
         * become resident only as far as they are used. */
        s.nodes = hw_pages_alloc(s.nodes_capacity * sizeof(*s.nodes));
        s.seen = hw_pages_alloc(8192 * sizeof(*s.seen));
        s.seen_mask = 8192 - 1;
        s.roots = hw_pages_alloc(ROOTS_MAX * sizeof(*s.roots));
        s.keep = PyList_New(0);
        if (!s.nodes || !s.seen || !s.roots || !s.keep) {
                PyErr_Clear();
                res->error = "out of memory";
                goto finish;
        }

        collect_frame_locals(&s); /* first: it allocates; after it, nothing does until the end */
        add_module_roots(&s);
        add_frame_roots(&s);

        for (;;) {
                PyObject *o;
                traverseproc trav;
                size_t one = 0;

                if (head >= s.n_nodes) {
                        /* the queue is empty: now the big containers put aside, smallest first,
                         * and first only their own items (a registry's handlers are right
                         * there; expanding a big list's items first could use up the budget) */
                        if (next_deferred >= n_deferred)
                                break;
                        if (!shallow_done) {
                                shallow_done = true;
                                sort_by_fanout(&s, deferred, n_deferred);
                                s.shallow = true;
                                for (size_t i = 0; i < n_deferred && !s.late && !s.enough; i++) {
                                        s.current = (int32_t) deferred[i];
                                        o = s.nodes[s.current].obj;
                                        if (Py_TYPE(o)->tp_traverse)
                                                (void) Py_TYPE(o)->tp_traverse(o, visit, &s);
                                }
                                s.shallow = false;
                                if (s.late || s.enough)
                                        break;
                        }
                        s.current = (int32_t) deferred[next_deferred++];
                } else {
                        s.current = (int32_t) head++;
                        o = s.nodes[s.current].obj;
                        /* A container of thousands is explored after everything else of its
                         * depth and below: a module-level list of a million records must not
                         * use up the budget before the registry of a thousand handlers next
                         * to it is looked at. */
                        if (fanout(o) > FANOUT_DEFER && n_deferred < DEFERRED_MAX) {
                                deferred[n_deferred++] = (uint32_t) s.current;
                                continue;
                        }
                }
                o = s.nodes[s.current].obj;
                trav = Py_TYPE(o)->tp_traverse;
                if (trav && PyObject_IS_GC(o))
                        (void) trav(o, visit, &s);
                if (s.late || (head % 64 == 0 && hw_now_monotonic() >= deadline))
                        break;
                /* Every type has a chain: look a little further for chains from other roots,
                 * then stop (a search need not use its whole budget). */
                for (size_t i = 0; i < s.n_targets; i++)
                        one += s.found[i] > 0;
                if (one == s.n_targets && s.holders_found >= s.holders_total && extra_until == 0)
                        extra_until = s.n_nodes + EXTRA_NODES;
                if (res->n_chains >= HW_CHAINS_MAX || (extra_until > 0 && head >= extra_until))
                        break;
        }
        res->visited = s.n_nodes;
        res->search_complete = head >= s.n_nodes && next_deferred >= n_deferred && !s.full && !s.late;

        /* the type names, as the census reports them */
        for (size_t i = 0; i < res->n_chains; i++) {
                size_t t = (size_t) (res->chains[i].target[0] - '0');
                if (t < s.n_targets)
                        hw_heapwalk_type_name(s.targets[t], res->chains[i].target, sizeof(res->chains[i].target));
        }
finish:
        if (PyErr_Occurred())
                PyErr_Clear();
        Py_XDECREF(s.keep);
        hw_pages_free(s.nodes, s.nodes_capacity * sizeof(*s.nodes));
        hw_pages_free(s.seen, (s.seen_mask + 1) * sizeof(*s.seen));
        hw_pages_free(s.roots, ROOTS_MAX * sizeof(*s.roots));
compact:
        /* the holders, per type, most instances first; one no root reaches is reported with
         * its container's type alone (root_kind "unreachable") */
        res->n_holders = 0;
        for (size_t t = 0; h && t < h->n_rows; t++)
                for (size_t k = 0; k < h->n[t]; k++) {
                        struct hw_chain c = res->holders[t * HW_HOLDERS_PER_TYPE + k];

                        if (c.n_steps == 0) {
                                snprintf(c.root_kind, sizeof(c.root_kind), "unreachable");
                                short_type_name(Py_TYPE(h->obj[t][k]), c.steps[0].type, sizeof(c.steps[0].type));
                                c.n_steps = 1;
                        }
                        res->holders[res->n_holders++] = c;
                }
}

void hw_heapwalk_chains(const struct hw_request *req, double deadline, struct hw_census_result *res) {
        chains_search(req, NULL, deadline, res);
}

void hw_heapwalk_chains_holders(const struct hw_request *req, const struct hw_holders *h, double deadline,
                                struct hw_census_result *res) {
        res->holders_requested = true;
        res->holders_complete = h->complete;
        res->holders_seen = h->seen;
        chains_search(req, h, deadline, res);
}

/* This thread's CPU time: beside the wall time of a GIL hold it tells our work from the time
 * the kernel gave the CPU to someone else while we held the GIL (a loaded machine). */
static double thread_cpu_seconds(void) {
        struct timespec ts;

        if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) < 0)
                return 0;
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* Sleeps until `end`, with the GIL released if we hold it, in steps of at most 10 ms that look at
 * *stop: stop(), exit and fork wait for this thread, and a 1 s pause (budget_ms 1000) made them
 * wait that long on top of the slice (found by review). */
static void sleep_until(double end, bool gil_held, const int *stop) {
        PyThreadState *save = NULL;

        if (end <= hw_now_monotonic())
                return;
        if (gil_held)
                save = PyEval_SaveThread();
        for (;;) {
                double left = end - hw_now_monotonic();
                struct timespec ts;

                if (left <= 0 || (stop && __atomic_load_n(stop, __ATOMIC_ACQUIRE)))
                        break;
                if (left > 0.01)
                        left = 0.01;
                ts.tv_sec = 0;
                ts.tv_nsec = (long) (left * 1e9);
                (void) nanosleep(&ts, NULL);
        }
        if (gil_held)
                PyEval_RestoreThread(save);
}

/* Between two slices of a census the host gets the GIL back for at least as long as we held
 * it: at most half of its time goes to a census, and never more than budget_ms at once. */
static void pause_between_slices(double held, bool gil_held, const int *stop) {
        sleep_until(hw_now_monotonic() + (held < 0.001 ? 0.001 : held), gil_held, stop);
}

/* The daemon's requests, served on the sampler thread, draw on one share of the host's time
 * (gilshare.h); the host's own census() and chains() calls, on its threads, do not. Only the
 * sampler thread touches it. */
static struct hw_gil_share request_share;

#define BUSY_ERROR "busy: the agent's share of the host's time for requests is spent; ask later"

static bool stopping(const int *stop) {
        return stop && __atomic_load_n(stop, __ATOMIC_ACQUIRE);
}

/* See heapwalk.h. A request holding the GIL on the sampler thread makes objects too: the chains
 * search its lists (the frames' locals), the census its cursor. */
static PyObject *gc_isenabled_fn, *gc_disable_fn, *gc_enable_fn; /* kept: each lookup by name
                                                                    * would leave a string behind */

/* fn() for its effect, nothing left behind; false if it failed */
static bool call_quietly(PyObject *fn, bool *ret_true) {
        PyObject *r = fn ? PyObject_CallObject(fn, NULL) : NULL;
        bool ok = r != NULL;

        if (ret_true)
                *ret_true = r && PyObject_IsTrue(r) > 0;
        Py_XDECREF(r);
        if (PyErr_Occurred())
                PyErr_Clear();
        return ok;
}

bool hw_heapwalk_collector_pause(void) {
        bool on = false;

        if (!gc_isenabled_fn && gc_mod()) {
                gc_isenabled_fn = HW_GETATTR(gc_module, "isenabled");
                gc_disable_fn = HW_GETATTR(gc_module, "disable");
                gc_enable_fn = HW_GETATTR(gc_module, "enable");
        }
        if (PyErr_Occurred())
                PyErr_Clear();
        if (!gc_isenabled_fn || !gc_disable_fn || !gc_enable_fn)
                return false;
        if (!call_quietly(gc_isenabled_fn, &on) || !on)
                return false;
        return call_quietly(gc_disable_fn, NULL);
}

void hw_heapwalk_collector_resume(bool on) {
        if (on)
                (void) call_quietly(gc_enable_fn, NULL);
}

json_t *hw_heapwalk_run(const struct hw_request *req, bool gil_held, const int *stop) {
        struct hw_census_result res = { .request_id = req->id, .kind = req->kind, .budget_ms = req->budget_ms };
        struct hw_census_table table = { 0 };
        /* on the sampler thread (no GIL of a caller's), a host object we let go of may have
         * been dropped by the host while the GIL was released: handoff.h */
        struct hw_census_walk walk = { .consistent = true, .hand_off = !gil_held };
        struct hw_holders holders = { 0 };
        struct hw_census_type *types = NULL;
        double start = hw_now_monotonic(), budget = req->budget_ms / 1000.0;
        PyGILState_STATE g = PyGILState_UNLOCKED;
        json_t *j;

        res.time = hw_now_unix();
        if (req->kind == HW_REQUEST_UNSUPPORTED)
                goto reply;
        if (!gil_held) {
                if (!hw_gil_share_may_start(&request_share, start)) {
                        res.error = BUSY_ERROR;
                        goto reply;
                }
                /* a pause as long as the last hold, whichever request it was: back-to-back
                 * requests kept the host from the GIL (found by review) */
                sleep_until(start + hw_gil_share_wait(&request_share, start), false, stop);
                if (stopping(stop)) {
                        res.error = "the agent is stopping";
                        goto reply;
                }
        }
        /* C memory first, without the GIL: the host does not wait for our allocations */
        if (req->kind == HW_REQUEST_CENSUS &&
            (hw_census_table_init(&table) < 0 || !(types = calloc(req->top, sizeof(*types))))) {
                res.error = "out of memory";
                goto reply;
        }
        res.types = types;

        for (unsigned slice = 0;; slice++) {
                double t0, c0, held, cpu;
                bool collector_on, share_left;
                bool last = true;
                int r;

                if (!gil_held)
                        g = PyGILState_Ensure();
                collector_on = hw_heapwalk_collector_pause();
                /* the budget starts when we have the GIL: it bounds how long the host waits */
                t0 = hw_now_monotonic();
                c0 = thread_cpu_seconds();
                if (req->kind == HW_REQUEST_CENSUS) {
                        r = hw_heapwalk_census_slice(&walk, &table, t0 + budget, &res.error);
                        last = r != 0 || slice + 1 >= req->slices;
                        if (r >= 0 && last)
                                hw_heapwalk_census_finish(&walk, &table, req->top, &res);
                        if (last)
                                hw_heapwalk_census_abandon(&walk, &table);
                } else if (req->holders && slice == 0) {
                        /* the holders in this hold, the chains to them in the next: each hold
                         * within the budget */
                        r = hw_heapwalk_holders(req, t0 + budget, &holders, &res.error);
                        last = r < 0;
                } else if (req->holders)
                        hw_heapwalk_chains_holders(req, &holders, t0 + budget, &res);
                else
                        hw_heapwalk_chains(req, t0 + budget, &res);
                if (last && req->holders)
                        hw_heapwalk_holders_release(&holders, walk.hand_off);
                if (PyErr_Occurred())
                        PyErr_Clear();
                held = hw_now_monotonic() - t0;
                cpu = thread_cpu_seconds() - c0;
                hw_heapwalk_collector_resume(collector_on);
                if (!gil_held)
                        PyGILState_Release(g);
                res.slices++;
                res.gil_seconds_total += held;
                if (held > res.gil_seconds) {
                        res.gil_seconds = held;
                        res.gil_cpu_seconds = cpu;
                }
                share_left = gil_held || hw_gil_share_spent(&request_share, hw_now_monotonic(), held);
                if (last)
                        break;
                if (share_left)
                        pause_between_slices(held, gil_held, stop);
                /* stop(), exit or fork wait for this thread, or the requests' share of the host's
                 * time is spent: end the census as it stands (a partial one) instead of going on
                 * with the remaining slices */
                if (stopping(stop) || !share_left) {
                        if (!gil_held)
                                g = PyGILState_Ensure();
                        collector_on = hw_heapwalk_collector_pause();
                        if (req->kind == HW_REQUEST_CENSUS) {
                                hw_heapwalk_census_finish(&walk, &table, req->top, &res);
                                hw_heapwalk_census_abandon(&walk, &table);
                        } else {
                                hw_heapwalk_holders_release(&holders, walk.hand_off);
                                res.error = share_left ? "the agent is stopping" : BUSY_ERROR;
                        }
                        hw_heapwalk_collector_resume(collector_on);
                        if (!gil_held)
                                PyGILState_Release(g);
                        break;
                }
        }

reply:
        res.duration_seconds = hw_now_monotonic() - start;
        j = hw_census_result_json(&res);
        hw_census_table_done(&table);
        free(types);
        return j;
}
