/*
 * The C side of Skiff's packetdrill interface.
 *
 * packetdrill (https://github.com/google/packetdrill) can test a stack that lives in a shared
 * object: it dlopen()s the object, calls `packetdrill_interface_init`, and then makes every
 * system call of a script, and injects or sniffs every packet, through the function pointers
 * the object filled in. This header declares that table as packetdrill expects it (field order
 * and types matter: it is an ABI), written for Skiff.
 *
 * Every callback takes the `userdata` pointer first, then the arguments of the system call of
 * the same name, and returns what that call returns, with errno set on failure.
 */
#ifndef SKIFF_PACKETDRILL_H
#define SKIFF_PACKETDRILL_H

#include <poll.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct skiff_pd_table {
    void *userdata;
    void (*free)(void *userdata);

    /* Sockets. */
    int (*socket)(void *userdata, int domain, int type, int protocol);
    int (*bind)(void *userdata, int fd, const struct sockaddr *address, socklen_t length);
    int (*listen)(void *userdata, int fd, int backlog);
    int (*accept)(void *userdata, int fd, struct sockaddr *address, socklen_t *length);
    int (*connect)(void *userdata, int fd, const struct sockaddr *address, socklen_t length);

    /* Reading. */
    ssize_t (*read)(void *userdata, int fd, void *buffer, size_t count);
    ssize_t (*readv)(void *userdata, int fd, const struct iovec *vector, int count);
    ssize_t (*recv)(void *userdata, int fd, void *buffer, size_t length, int flags);
    ssize_t (*recvfrom)(void *userdata, int fd, void *buffer, size_t length, int flags,
                        struct sockaddr *source, socklen_t *source_length);
    ssize_t (*recvmsg)(void *userdata, int fd, struct msghdr *message, int flags);

    /* Writing. */
    ssize_t (*write)(void *userdata, int fd, const void *buffer, size_t count);
    ssize_t (*writev)(void *userdata, int fd, const struct iovec *vector, int count);
    ssize_t (*send)(void *userdata, int fd, const void *buffer, size_t length, int flags);
    ssize_t (*sendto)(void *userdata, int fd, const void *buffer, size_t length, int flags,
                      const struct sockaddr *destination, socklen_t destination_length);
    ssize_t (*sendmsg)(void *userdata, int fd, const struct msghdr *message, int flags);

    /* Descriptor control (the two variadic ones are C trampolines). */
    int (*fcntl)(void *userdata, int fd, int command, ...);
    int (*ioctl)(void *userdata, int fd, unsigned long request, ...);
    int (*close)(void *userdata, int fd);
    int (*shutdown)(void *userdata, int fd, int how);
    int (*getsockopt)(void *userdata, int fd, int level, int name, void *value, socklen_t *length);
    int (*setsockopt)(void *userdata, int fd, int level, int name, const void *value, socklen_t length);
    int (*poll)(void *userdata, struct pollfd *fds, nfds_t count, int timeout_ms);

    /* The device: an IP packet (no link header) into the stack; the next one out of it. */
    int (*netdev_send)(void *userdata, const void *packet, size_t length);
    int (*netdev_receive)(void *userdata, void *packet, size_t *length, long long *time_usecs);

    /* Virtual time. */
    int (*usleep)(void *userdata, useconds_t usec);
    int (*gettimeofday)(void *userdata, struct timeval *tv, struct timezone *tz);

    /* epoll, pipe, splice. */
    int (*epoll_create)(void *userdata, int size);
    int (*epoll_ctl)(void *userdata, int epfd, int op, int fd, struct epoll_event *event);
    int (*epoll_wait)(void *userdata, int epfd, struct epoll_event *events, int max_events, int timeout_ms);
    int (*pipe)(void *userdata, int fds[2]);
    int (*splice)(void *userdata, int fd_in, loff_t *offset_in, int fd_out, loff_t *offset_out,
                  size_t length, unsigned int flags);
} skiff_pd_table;

/* packetdrill's name for the table. */
#define packetdrill_interface skiff_pd_table

/* The entry point packetdrill looks up with dlsym(). */
void packetdrill_interface_init(const char *flags, struct skiff_pd_table *table);

/* Implemented in Swift (SkiffPacketdrill): fills every field but fcntl and ioctl. */
void skiff_pd_fill(const char *flags, struct skiff_pd_table *table);
/* Implemented in Swift: fcntl and ioctl with their optional argument already read. */
int skiff_pd_fcntl(void *userdata, int fd, int command, long argument);
int skiff_pd_ioctl(void *userdata, int fd, unsigned long request, void *argument);

/* Sets the calling thread's errno (Swift cannot assign to the errno macro portably). */
void skiff_pd_set_errno(int value);

#ifdef __cplusplus
}
#endif

#endif

/*
 * Descriptor numbers. packetdrill closes the live descriptors of the sockets a script leaves
 * open with the real close(2) when it ends, so each Skiff descriptor is backed by a real one:
 * a placeholder (an unconnected AF_UNIX datagram socket, which has its own inode) whose number
 * the kernel picks, the lowest free, as it would for a real socket.
 */
/* Opens a placeholder; returns its descriptor and inode, or -1 with errno set. */
int skiff_pd_reserve_fd(unsigned long long *inode);
/* Closes `fd` if it is still the placeholder with `inode` (packetdrill may have closed it). */
void skiff_pd_release_fd(int fd, unsigned long long inode);

/*
 * Host calls on placeholder descriptors. packetdrill's code events (`%{ ... }%`) read TCP_INFO,
 * TCP_CC_INFO and SO_MEMINFO with the process's own getsockopt(2) on the live descriptor, not
 * through the table; a preloaded shim (scripts/packetdrill-preload.c) interposes getsockopt and
 * asks the library first through skiff_pd_live_getsockopt, found with dlsym.
 */
/* Every live host (userdata) registers itself while it exists. */
void skiff_pd_register_host(void *userdata);
void skiff_pd_unregister_host(void *userdata);
/* Implemented in Swift: the host's answer for `fd`, or -2 (errno untouched) if `fd` is not one
 * of its descriptors. */
int skiff_pd_host_live_getsockopt(void *userdata, int fd, int level, int name, void *value, socklen_t *length);
/* Exported: getsockopt(2) for a descriptor of any live host — 0, or -1 with errno set — or -2
 * if no host owns `fd` (the caller then asks the kernel). */
int skiff_pd_live_getsockopt(int fd, int level, int name, void *value, socklen_t *length);
/* sendfile(2) reaches the process's libc as well (packetdrill calls it on the live descriptors):
 * the shim reads the file and hands the bytes to the host that owns `fd` — bytes sent, or -1 with
 * errno set — or -2 if no live host has that descriptor. */
long skiff_pd_host_live_send(void *userdata, int fd, const void *buf, size_t length);
long skiff_pd_live_send(int fd, const void *buf, size_t length);
