/*
 * LD_PRELOAD shim for running packetdrill against libSkiffPacketdrill.so.
 *
 * Why: packetdrill performs a script's system calls through the library's table, but its code
 * events (`%{ assert tcpi_snd_cwnd == 10 }%`, gtests/net/packetdrill/code.c: run_code_event ->
 * get_data) call the process's own getsockopt(2) on the socket's live descriptor to read
 * TCP_INFO, TCP_CC_INFO and SO_MEMINFO. For the library that descriptor is a placeholder (an
 * AF_UNIX socket, see Sources/CSkiffPacketdrill/descriptors.c), so the kernel refuses and the
 * script dies with "can't find getsockopt to get TCP info".
 *
 * What: this interposes getsockopt. For those three options it first asks the loaded library
 * (its exported skiff_pd_live_getsockopt, found among the loaded objects with dlsym — the library
 * is dlopen'ed RTLD_LOCAL, so RTLD_DEFAULT cannot see it); the library answers for its own
 * descriptors in Linux's layouts and returns -2 for any other descriptor. Everything else goes
 * to the real getsockopt (RTLD_NEXT). packetdrill itself is unchanged.
 *
 * sendfile(2) likewise: packetdrill calls it on the live descriptors. When the library owns the
 * output descriptor (its skiff_pd_live_send answers anything but -2), the shim reads the file
 * itself (pread at *offset, which it advances, or read) and sends the bytes through the library.
 *
 * Build: cc -shared -fPIC -O2 -o libskiff-pd-preload.so packetdrill-preload.c -ldl
 * Use:   LD_PRELOAD=/path/libskiff-pd-preload.so packetdrill --so_filename=... script.pkt
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <errno.h>
#include <unistd.h>

#ifndef TCP_CC_INFO
#define TCP_CC_INFO 26
#endif
#ifndef SO_MEMINFO
#define SO_MEMINFO 55
#endif

typedef int (*getsockopt_fn)(int, int, int, void *, socklen_t *);

enum { MAX_OBJECTS = 256, MAX_NAME = 1024 };
struct names { int count; char name[MAX_OBJECTS][MAX_NAME]; };

/* Collects the loaded objects' paths (dlopen must not run inside dl_iterate_phdr). */
static int collect(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    struct names *n = data;
    if (info->dlpi_name && info->dlpi_name[0] && n->count < MAX_OBJECTS) {
        strncpy(n->name[n->count], info->dlpi_name, MAX_NAME - 1);
        n->name[n->count][MAX_NAME - 1] = 0;
        n->count++;
    }
    return 0;
}

/* A symbol of the loaded library, or NULL while it is not loaded. */
static void *skiff_symbol(const char *symbol) {
    void *f = NULL;
    static struct names names;   /* large: not on the stack, so under a lock */
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&lock);
    names.count = 0;
    dl_iterate_phdr(collect, &names);
    for (int i = 0; i < names.count && !f; i++) {
        void *h = dlopen(names.name[i], RTLD_LAZY | RTLD_NOLOAD);
        if (!h) continue;
        f = dlsym(h, symbol);
        dlclose(h);   /* drops only the reference RTLD_NOLOAD took */
    }
    pthread_mutex_unlock(&lock);
    return f;
}

/* The library's getsockopt entry, once it is loaded; NULL before (looked for again next time). */
static getsockopt_fn skiff_entry(void) {
    static _Atomic(getsockopt_fn) cached;
    getsockopt_fn f = atomic_load(&cached);
    if (f) return f;
    f = (getsockopt_fn)skiff_symbol("skiff_pd_live_getsockopt");
    if (f) atomic_store(&cached, f);
    return f;
}

typedef long (*send_fn)(int, const void *, size_t);

static send_fn skiff_send_entry(void) {
    static _Atomic(send_fn) cached;
    send_fn f = atomic_load(&cached);
    if (f) return f;
    f = (send_fn)skiff_symbol("skiff_pd_live_send");
    if (f) atomic_store(&cached, f);
    return f;
}

/* sendfile for a library descriptor: -2 if out_fd is not one. */
static ssize_t skiff_sendfile(int out_fd, int in_fd, off_t *offset, size_t count) {
    send_fn skiff = skiff_send_entry();
    if (!skiff) return -2;
    int saved = errno;
    if (skiff(out_fd, NULL, 0) == -2) { errno = saved; return -2; }
    static char buf[65536];   /* packetdrill makes one system call at a time */
    size_t total = 0;
    off_t pos = offset ? *offset : 0;
    while (total < count) {
        size_t want = count - total < sizeof buf ? count - total : sizeof buf;
        ssize_t got = offset ? pread(in_fd, buf, want, pos) : read(in_fd, buf, want);
        if (got < 0) { if (total) break; return -1; }
        if (got == 0) break;
        long sent = skiff(out_fd, buf, (size_t)got);
        if (sent < 0) {
            if (!offset) lseek(in_fd, -got, SEEK_CUR);
            if (total) break;
            return -1;
        }
        if (!offset && sent < got) lseek(in_fd, -(got - sent), SEEK_CUR);
        total += (size_t)sent;
        pos += sent;
        if (sent < got) break;
    }
    if (offset) *offset = pos;
    return (ssize_t)total;
}

typedef ssize_t (*sendfile_fn)(int, int, off_t *, size_t);

ssize_t sendfile(int out_fd, int in_fd, off_t *offset, size_t count) {
    ssize_t r = skiff_sendfile(out_fd, in_fd, offset, count);
    if (r != -2) return r;
    sendfile_fn next = (sendfile_fn)dlsym(RTLD_NEXT, "sendfile");
    return next(out_fd, in_fd, offset, count);
}

ssize_t sendfile64(int out_fd, int in_fd, off_t *offset, size_t count) {
    ssize_t r = skiff_sendfile(out_fd, in_fd, offset, count);
    if (r != -2) return r;
    sendfile_fn next = (sendfile_fn)dlsym(RTLD_NEXT, "sendfile64");
    return next(out_fd, in_fd, offset, count);
}

int getsockopt(int fd, int level, int name, void *value, socklen_t *length) {
    static _Atomic(getsockopt_fn) real;
    getsockopt_fn next = atomic_load(&real);
    if (!next) {
        next = (getsockopt_fn)dlsym(RTLD_NEXT, "getsockopt");
        atomic_store(&real, next);
    }
    if ((level == SOL_TCP && (name == TCP_INFO || name == TCP_CC_INFO)) ||
        (level == SOL_SOCKET && name == SO_MEMINFO)) {
        getsockopt_fn skiff = skiff_entry();
        if (skiff) {
            int r = skiff(fd, level, name, value, length);
            if (r != -2) return r;
        }
    }
    return next(fd, level, name, value, length);
}
