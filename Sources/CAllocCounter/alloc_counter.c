// Counts heap allocations by interposing the C allocator in the `skiff` executable, so the
// benchmarks can report allocations per packet. Each call is forwarded to glibc's own entry
// points (__libc_*), so behaviour is unchanged; the count is one relaxed atomic add.
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <malloc.h>
#include "alloc_counter.h"

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static uint64_t count, bytes;

static inline void note(size_t n) {
    __atomic_fetch_add(&count, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&bytes, n, __ATOMIC_RELAXED);
}

uint64_t skiff_allocation_count(void) { return __atomic_load_n(&count, __ATOMIC_RELAXED); }
uint64_t skiff_allocation_bytes(void) { return __atomic_load_n(&bytes, __ATOMIC_RELAXED); }

void *malloc(size_t n) { note(n); return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { note(a * b); return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { note(n); return __libc_realloc(p, n); }
void free(void *p) { __libc_free(p); }
void *memalign(size_t al, size_t n) { note(n); return __libc_memalign(al, n); }
void *aligned_alloc(size_t al, size_t n) { note(n); return __libc_memalign(al, n); }
int posix_memalign(void **out, size_t al, size_t n) {
    note(n);
    void *p = __libc_memalign(al, n);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

uint64_t skiff_heap_in_use(void) { return (uint64_t)mallinfo2().uordblks; }
