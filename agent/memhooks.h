/* SPDX-License-Identifier: MIT */
/*
 * The agent's hooks in the interpreter's memory allocators: a pass-through wrapper around
 * pymalloc's arena allocator that counts arenas, and the heap profiler's wrappers of the
 * allocator domains, which capture the Python stack of sampled allocations into
 * hw_memhooks_profile (heapprof.c keeps and reports it). module.c decides when they are in the
 * chain. Every function here is called with the GIL held, except hw_arena_hooks_read() and
 * hw_heap_hooks_pool_counts() (counters), hw_heap_hooks_refill() (the agent's thread,
 * without it), the fork locks (pthread_atfork) and hw_heap_hooks_after_fork_child() (in a fork
 * child, single-threaded).
 *
 * Putting a hook in and taking it out are safe whatever else wraps the same allocators: a hook
 * someone wrapped since stays in the chain and only passes through.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "heapprof.h"

/* What the heap profiler's wrappers record: the live sampled blocks by stack. Initialised once
 * per process (hw_heapprof_init()); its lock is taken across fork() by module.c. */
extern struct hw_heapprof hw_memhooks_profile;

/* Count pymalloc's arena allocations and frees from now on (counters reset). */
void hw_arena_hooks_install(void);
/* Stop counting; the original arena allocator comes back where it can. */
void hw_arena_hooks_restore(void);
/* The counters since hw_arena_hooks_install() and the size of the latest arena (0: none yet).
 * Returns false, and leaves the outputs alone, when not counting. */
bool hw_arena_hooks_read(uint64_t *ret_allocs, uint64_t *ret_frees, uint64_t *ret_size);

/* Profile the heap: about one allocation per sample_bytes allocated is recorded with up to
 * stack_depth frames. sample_bytes 0: profiling off (as hw_heap_hooks_restore()). */
void hw_heap_hooks_install(uint64_t sample_bytes, unsigned stack_depth);
/* Stop profiling and forget every sample; the original allocators come back where they can. */
void hw_heap_hooks_restore(unsigned stack_depth);
/* Whether a heap profiler wrapper is in an allocator chain (and sees its allocations). */
bool hw_heap_hooks_in_chain(void);
/* GIL held, while profiling: whether the wrappers still see the domains' allocations. Another
 * tool that puts back the allocators it found under ours takes ours out without our knowing
 * (tracemalloc.stop() after tracemalloc.start() before ours): every sample we track may then be
 * freed unseen. Found out, the samples are forgotten (a new profile epoch) and the wrappers go
 * back in over the interpreter's own allocators; over anything else they stay out (wrapping
 * over a chain we may still be deep inside would call ourselves for good) and profiling is off
 * until the chain is the interpreter's own again. Returns 1 when the wrappers went back in, -1
 * when profiling is off for it, 0 when all is as it was. */
int hw_heap_hooks_verify(uint64_t sample_bytes, unsigned stack_depth);
/* How often hw_heap_hooks_verify() has put the wrappers back since the process started. */
uint64_t hw_heap_hooks_rewrapped(void);
/* In a fork child: the parent's samples describe the parent, and a sample being recorded at
 * the fork belongs to a thread the child does not have. */
void hw_heap_hooks_after_fork_child(void);

/* The padded sampled blocks' pool (memhooks.c): blocks the agent's own thread allocates, so that
 * they come from its malloc arena and not the host's main heap. Call hw_heap_hooks_refill() on
 * that thread whenever it wakes; wake(arg) is how the hooks ask it to, from any thread, with or
 * without the GIL: it must not block. Set the waker before the hooks go in. */
void hw_heap_hooks_refill(void);
void hw_heap_hooks_set_waker(void (*wake)(void *arg), void *arg);
/* Padded requests served from the pool and by the host's malloc (the pool was empty), since the
 * process started, and the blocks in the pool now. */
void hw_heap_hooks_pool_counts(uint64_t *ret_served, uint64_t *ret_missed, unsigned *ret_ready);
/* The pool's lock, held across fork() (module.c's pthread_atfork handlers). */
void hw_heap_hooks_lock_for_fork(void);
void hw_heap_hooks_unlock_after_fork(void);
