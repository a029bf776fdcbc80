/* SPDX-License-Identifier: MIT */
/*
 * Memory for the agent's big tables, straight from the kernel instead of the host's malloc: the
 * short-lived ones (a census's type table, a chain search's visited set, nodes and roots: up to
 * tens of MiB for a moment) and the heap profiler's, which grow by doubling (tracked samples,
 * sites, stacks and their indexes). From malloc they stayed behind in the host:
 *  - a table freed in an arena above blocks the host allocated meanwhile cannot be given back
 *    and stays resident, free but held;
 *  - glibc raises its mmap threshold (M_MMAP_THRESHOLD, dynamic up to 32 MiB) to the size of
 *    every mmapped chunk freed: after the agent freed a 2 MiB table, every block of the host
 *    up to 2 MiB came from the heap instead of mmap, where the host's churn fragments it.
 * Measured on a batch job's heap (tests/scenarios batch_sawtooth) before this: one chain
 * search left +2.4 MB held free in malloc and +5.5 MB RSS for good
 * (tests/e2e/test_census.py test_census_and_chains_leave_the_hosts_heap_as_they_found_it);
 * 40,000 tracked samples left the threshold above 600 KiB (tests/unit/test-agent-heapprof.c
 * test_tables_leave_mmap_threshold).
 *
 * Pages are zeroed, only the touched ones become resident, and all of them go back to the
 * kernel when freed. Under AddressSanitizer/ThreadSanitizer these are plain calloc/realloc/free
 * instead, so that the sanitizer still checks every access to the tables (its own allocator
 * has no mmap threshold to move).
 */
#pragma once

#include <stddef.h>

/* size bytes of zeroed memory, or NULL (errno set). size 0 is refused (EINVAL). */
void *hw_pages_alloc(size_t size);

/* Grow p (old_size bytes, from hw_pages_alloc) to new_size > old_size: the contents kept, the
 * rest zeroed. Returns the (possibly moved) block, or NULL with p unchanged and still valid. */
void *hw_pages_grow(void *p, size_t old_size, size_t new_size);

/* Give back p (size bytes, as allocated or last grown to); NULL is a no-op. */
void hw_pages_free(void *p, size_t size);
