#ifndef SKIFF_ALLOC_COUNTER_H
#define SKIFF_ALLOC_COUNTER_H
#include <stdint.h>
/// Heap allocations (malloc, calloc, realloc, aligned forms) made by this process so far.
uint64_t skiff_allocation_count(void);
/// Bytes requested by those allocations.
uint64_t skiff_allocation_bytes(void);
/// Bytes of heap in use now (glibc's `mallinfo2().uordblks`).
uint64_t skiff_heap_in_use(void);
#endif
