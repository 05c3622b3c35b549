#ifndef CSKIFFLINUX_H
#define CSKIFFLINUX_H
// Declarations Glibc's Swift module leaves out because they are GNU extensions (the module is
// built without _GNU_SOURCE): batched socket receive. Linux: `recvmmsg(2)`.
#include <sys/socket.h>
#include <time.h>

/// Layout of `struct mmsghdr` (<bits/socket.h> under __USE_GNU).
struct skiff_mmsghdr {
    struct msghdr msg_hdr;
    unsigned int msg_len;
};

/// `recvmmsg(2)` under a name that cannot clash with glibc's own declaration.
extern int skiff_recvmmsg(int fd, struct skiff_mmsghdr *vmessages, unsigned int vlen, int flags,
                          struct timespec *timeout) __asm__("recvmmsg");

#endif
