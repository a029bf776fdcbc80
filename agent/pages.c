/* SPDX-License-Identifier: MIT */
/*
 * The agent's big tables from the kernel, not from the host's malloc (see pages.h).
 */
#include "agent-util.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "pages.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define HW_PAGES_FROM_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define HW_PAGES_FROM_MALLOC 1
#endif
#endif

#ifdef HW_PAGES_FROM_MALLOC

void *hw_pages_alloc(size_t size) {
        if (size == 0 || size > PTRDIFF_MAX) {
                /* a sanitizer's calloc reports an impossible size instead of returning NULL */
                errno = size == 0 ? EINVAL : ENOMEM;
                return NULL;
        }
        return calloc(1, size);
}

void *hw_pages_grow(void *p, size_t old_size, size_t new_size) {
        char *n;

        /* the contract of the mmap variant below: p must come from hw_pages_alloc() */
        if (!p || new_size <= old_size || new_size > PTRDIFF_MAX) {
                errno = !p || new_size <= old_size ? EINVAL : ENOMEM;
                return NULL;
        }
        n = realloc(p, new_size);
        if (n)
                memset(n + old_size, 0, new_size - old_size);
        return n;
}

void hw_pages_free(void *p, size_t size) {
        (void) size;
        free(p);
}

#else

/* The mapping's length: size rounded up to whole pages (mmap and munmap work in pages). */
static size_t mapped_length(size_t size) {
        size_t page = (size_t) sysconf(_SC_PAGESIZE);

        if (size > SIZE_MAX - page)
                return 0;
        return (size + page - 1) / page * page;
}

void *hw_pages_alloc(size_t size) {
        size_t len = mapped_length(size);
        void *p;

        if (size == 0 || len == 0) {
                errno = size == 0 ? EINVAL : ENOMEM;
                return NULL;
        }
        /* anonymous private pages are zero-filled: calloc's contract for free */
        p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return p == MAP_FAILED ? NULL : p;
}

void *hw_pages_grow(void *p, size_t old_size, size_t new_size) {
        size_t old_len = mapped_length(old_size), new_len = mapped_length(new_size);
        void *n;

        if (!p || new_size <= old_size || new_len == 0) {
                errno = new_len == 0 && p && new_size > old_size ? ENOMEM : EINVAL;
                return NULL;
        }
        if (new_len == old_len)
                return p; /* the page already holds it, zeroed past old_size */
        /* mremap moves the pages without copying them; the pages it adds are zero-filled */
        n = mremap(p, old_len, new_len, MREMAP_MAYMOVE);
        return n == MAP_FAILED ? NULL : n;
}

void hw_pages_free(void *p, size_t size) {
        if (p)
                munmap(p, mapped_length(size));
}

#endif
