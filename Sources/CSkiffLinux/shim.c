#include "CSkiffLinux.h"
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>

int skiff_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

int skiff_epoll_add(int epfd, int fd) {
    struct epoll_event e = { .events = EPOLLIN, .data = { .fd = fd } };
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e);
}

int skiff_epoll_watch(int epfd, int fd, int watch) {
    struct epoll_event e = { .events = watch ? EPOLLIN : 0, .data = { .fd = fd } };
    return epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &e);
}

int skiff_epoll_wait(int epfd, int *fds, int max, int timeout_ms) {
    struct epoll_event events[16];
    if (max > 16) max = 16;
    int n = epoll_wait(epfd, events, max, timeout_ms);
    for (int i = 0; i < n; i++) fds[i] = events[i].data.fd;
    return n;
}

int skiff_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

int skiff_timerfd(void) { return timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC); }

int skiff_timerfd_arm(int fd, unsigned long long at_ns) {
    struct itimerspec spec = { 0 };
    spec.it_value.tv_sec = (time_t)(at_ns / 1000000000ULL);
    spec.it_value.tv_nsec = (long)(at_ns % 1000000000ULL);
    return timerfd_settime(fd, TFD_TIMER_ABSTIME, &spec, 0);
}
