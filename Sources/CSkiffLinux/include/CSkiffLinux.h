#ifndef CSKIFFLINUX_H
#define CSKIFFLINUX_H
// What Glibc's Swift module leaves out: GNU extensions (the module is built without
// _GNU_SOURCE) and the Linux-only epoll, eventfd and timerfd headers. Thin wrappers only.
#include <sys/socket.h>
#include <time.h>
#include <pthread.h>

/// Layout of `struct mmsghdr` (<bits/socket.h> under __USE_GNU).
struct skiff_mmsghdr {
    struct msghdr msg_hdr;
    unsigned int msg_len;
};

/// `recvmmsg(2)` under a name that cannot clash with glibc's own declaration.
extern int skiff_recvmmsg(int fd, struct skiff_mmsghdr *vmessages, unsigned int vlen, int flags,
                          struct timespec *timeout) __asm__("recvmmsg");

/// `pthread_setname_np(3)` (GNU).
extern int skiff_pthread_setname_np(pthread_t thread, const char *name) __asm__("pthread_setname_np");

/// epoll: a non-blocking-friendly set; `struct epoll_event` is packed on x86-64, so callers see
/// only descriptors. Return -1 and errno on failure, as the system calls.
int skiff_epoll_create(void);
int skiff_epoll_add(int epfd, int fd);
/// Watches `fd` for input again (`watch` 1) or stops watching it (0) without removing it.
int skiff_epoll_watch(int epfd, int fd, int watch);
/// Waits up to `timeout_ms` (-1: no limit); writes the ready descriptors to `fds`.
int skiff_epoll_wait(int epfd, int *fds, int max, int timeout_ms);

/// A non-blocking, close-on-exec eventfd (Linux: `eventfd2`).
int skiff_eventfd(void);
/// A non-blocking, close-on-exec CLOCK_MONOTONIC timerfd.
int skiff_timerfd(void);
/// Arms `fd` at absolute monotonic nanoseconds (0 disarms).
int skiff_timerfd_arm(int fd, unsigned long long at_ns);


/// Batched writes through io_uring (no liburing): queue `writev` requests, then hand them all to
/// the kernel with one `io_uring_enter` and wait until every one has completed.
struct skiff_uring;
struct iovec;
/// One completed request: the caller's tag and the system call's result (bytes, or -errno).
struct skiff_uring_result {
    unsigned long long tag;
    int result;
};
/// A ring of at least `entries` requests. NULL and errno when io_uring is unavailable (ENOSYS,
/// EPERM under a sandbox or kernel.io_uring_disabled).
struct skiff_uring *skiff_uring_create(unsigned entries);
void skiff_uring_destroy(struct skiff_uring *ring);
/// Queues `writev(fd, iov, count)`. The iovecs and what they point at must stay valid until the
/// flush. 0, or -1 when the ring is full.
int skiff_uring_writev(struct skiff_uring *ring, int fd, const struct iovec *iov, unsigned count, unsigned long long tag);
/// Submits every queued request and waits until each one the kernel took has completed; writes
/// up to `max` results (in completion order) and returns how many. When the ring itself fails,
/// `*failure` is the errno, the requests without a result were never submitted (and never will
/// be), and the ring takes no more requests.
int skiff_uring_flush(struct skiff_uring *ring, struct skiff_uring_result *results, unsigned max, int *failure);

#endif
