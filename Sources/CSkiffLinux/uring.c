// Batched frame writes through io_uring: many writev requests handed to the kernel with one
// io_uring_enter(2). No liburing: the two rings are mapped and driven by hand, which for this
// one pattern (queue, submit all, wait for all) is a few dozen lines.
#include "CSkiffLinux.h"
#include <errno.h>
#include <linux/io_uring.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef RWF_NOWAIT
#define RWF_NOWAIT 0x00000008
#endif

struct skiff_uring {
    int fd;
    unsigned entries;
    unsigned *sq_head, *sq_tail, *sq_mask, *sq_array;
    unsigned *cq_head, *cq_tail, *cq_mask;
    struct io_uring_sqe *sqes;
    struct io_uring_cqe *cqes;
    void *sq_map, *cq_map;
    size_t sq_size, cq_size, sqes_size;
    unsigned queued;      // requests written to the SQ ring and not yet submitted
    int dead;             // a flush failed: the ring takes no more requests
};

static void unmap_all(struct skiff_uring *r) {
    if (r->sqes) munmap(r->sqes, r->sqes_size);
    if (r->cq_map && r->cq_map != r->sq_map) munmap(r->cq_map, r->cq_size);
    if (r->sq_map) munmap(r->sq_map, r->sq_size);
}

struct skiff_uring *skiff_uring_create(unsigned entries) {
    struct skiff_uring *r = calloc(1, sizeof *r);
    if (!r) { errno = ENOMEM; return NULL; }
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    int fd = (int)syscall(__NR_io_uring_setup, entries, &p);
    if (fd < 0) { int e = errno; free(r); errno = e; return NULL; }
    r->fd = fd;
    r->entries = p.sq_entries;
    r->sq_size = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    r->cq_size = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    int single = (p.features & IORING_FEAT_SINGLE_MMAP) != 0;
    if (single && r->cq_size > r->sq_size) r->sq_size = r->cq_size;
    r->sq_map = mmap(NULL, r->sq_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
    if (r->sq_map == MAP_FAILED) { r->sq_map = NULL; goto fail; }
    if (single) {
        r->cq_map = r->sq_map;
    } else {
        r->cq_map = mmap(NULL, r->cq_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_CQ_RING);
        if (r->cq_map == MAP_FAILED) { r->cq_map = NULL; goto fail; }
    }
    r->sqes_size = p.sq_entries * sizeof(struct io_uring_sqe);
    r->sqes = mmap(NULL, r->sqes_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
    if (r->sqes == MAP_FAILED) { r->sqes = NULL; goto fail; }
    char *sq = r->sq_map, *cq = r->cq_map;
    r->sq_head = (unsigned *)(sq + p.sq_off.head);
    r->sq_tail = (unsigned *)(sq + p.sq_off.tail);
    r->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
    r->sq_array = (unsigned *)(sq + p.sq_off.array);
    r->cq_head = (unsigned *)(cq + p.cq_off.head);
    r->cq_tail = (unsigned *)(cq + p.cq_off.tail);
    r->cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
    r->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
    for (unsigned i = 0; i < p.sq_entries; i++) r->sq_array[i] = i;
    // The device's descriptors are not registered with the ring: a registered file stays
    // referenced until the ring's teardown, which the kernel finishes asynchronously after the
    // ring is closed (or the process exits), and a TAP still referenced is "busy" to the next
    // process that attaches to it.
    return r;
fail:;
    int e = errno;
    unmap_all(r);
    close(fd);
    free(r);
    errno = e;
    return NULL;
}

void skiff_uring_destroy(struct skiff_uring *r) {
    if (!r) return;
    unmap_all(r);
    close(r->fd);
    free(r);
}

int skiff_uring_writev(struct skiff_uring *r, int fd, const struct iovec *iov, unsigned count, unsigned long long tag) {
    if (r->dead || r->queued >= r->entries) return -1;
    unsigned tail = *r->sq_tail + r->queued;
    struct io_uring_sqe *e = &r->sqes[tail & *r->sq_mask];
    memset(e, 0, sizeof *e);
    e->opcode = IORING_OP_WRITEV;
    e->fd = fd;
    e->addr = (unsigned long long)(uintptr_t)iov;
    e->len = count;
    e->off = (unsigned long long)-1;   // the file position does not apply: a stream of frames
    // Refused at once when the file cannot take it now (EAGAIN), as a non-blocking writev is:
    // without it io_uring waits for room and runs the write later, after frames queued behind it.
    e->rw_flags = RWF_NOWAIT;
    e->user_data = tag;
    r->queued++;
    return 0;
}

int skiff_uring_flush(struct skiff_uring *r, struct skiff_uring_result *out, unsigned max, int *failure) {
    *failure = 0;
    unsigned n = r->queued;
    if (n == 0 || r->dead) return 0;
    __atomic_store_n(r->sq_tail, *r->sq_tail + n, __ATOMIC_RELEASE);
    r->queued = 0;
    unsigned submitted = 0, reaped = 0, idle = 0;
    int gave_up = 0;
    // Ends only when every request the kernel took has completed: until then it may still read
    // the frames, whose memory goes back to the pool once this returns.
    while (reaped < submitted || (!gave_up && submitted < n)) {
        unsigned to_submit = gave_up ? 0 : n - submitted;
        int got = (int)syscall(__NR_io_uring_enter, r->fd, to_submit, submitted + to_submit - reaped,
                               IORING_ENTER_GETEVENTS, NULL, 0);
        int err = got < 0 ? errno : 0;
        if (got > 0) submitted += (unsigned)got;
        unsigned head = *r->cq_head, tail = __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE);
        int progress = got > 0 || head != tail;
        for (; head != tail; head++, reaped++) {
            struct io_uring_cqe *c = &r->cqes[head & *r->cq_mask];
            if (reaped < max) { out[reaped].tag = c->user_data; out[reaped].result = c->res; }
        }
        __atomic_store_n(r->cq_head, head, __ATOMIC_RELEASE);
        if (progress) { idle = 0; continue; }
        // EINTR: a signal; EAGAIN/EBUSY: the kernel is short of memory or has completions to post
        // first: wait a little and try again. Any other error, or no progress for long, and the
        // requests not yet submitted are never submitted (the ring is dead); those submitted
        // are still waited for.
        if (err == EINTR) continue;
        if (err == EAGAIN || err == EBUSY || err == 0) {
            sched_yield();
            if (++idle < 100000 || reaped < submitted) continue;
        }
        if (!gave_up) { gave_up = 1; *failure = err ? err : EIO; }
        if (reaped < submitted && err != EAGAIN && err != EBUSY && err != 0) {
            // The wait itself fails: watch the completion ring without the system call (each
            // round above reads it) for a while, then leave. Only a broken kernel gets here.
            sched_yield();
            if (++idle > 1000000) break;
        }
    }
    if (gave_up) r->dead = 1;
    return (int)(reaped < max ? reaped : max);
}
