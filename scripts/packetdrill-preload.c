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
#include <sys/socket.h>

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

/* The library's entry, once it is loaded; NULL before (then looked for again next time). */
static getsockopt_fn skiff_entry(void) {
    static _Atomic(getsockopt_fn) cached;
    getsockopt_fn f = atomic_load(&cached);
    if (f) return f;
    static struct names names;   /* large: not on the stack, so under a lock */
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&lock);
    names.count = 0;
    dl_iterate_phdr(collect, &names);
    for (int i = 0; i < names.count && !f; i++) {
        void *h = dlopen(names.name[i], RTLD_LAZY | RTLD_NOLOAD);
        if (!h) continue;
        f = (getsockopt_fn)dlsym(h, "skiff_pd_live_getsockopt");
        dlclose(h);   /* drops only the reference RTLD_NOLOAD took */
    }
    pthread_mutex_unlock(&lock);
    if (f) atomic_store(&cached, f);
    return f;
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
