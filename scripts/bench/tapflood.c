// tapflood: the raw cost of handing 1514-byte frames to the kernel through a TAP, the ceiling
// that any user-space stack writing to a TAP lives under (the kernel's receive path runs inside
// each write()).
//   tapflood DEV COUNT drop   frames to an address that is not the kernel's (10.0.0.99): the
//                             kernel takes each frame up to IP routing and drops it
//   tapflood DEV COUNT udp    UDP datagrams to 10.0.0.1:5009, read by a thread of this program
//                             (the kernel's UDP receive path and a wake-up of the reader)
//   tapflood DEV COUNT udp uring   the same datagrams, written 32 at a time through io_uring
//                             (one io_uring_enter per 32 writes, as Skiff's port does): the
//                             ceiling without a system call per frame
// DEV must exist (ip tuntap add dev DEV mode tap) with 10.0.0.1/24 and be up. Prints frames/s,
// the Gbit/s those frames carry on the wire, and the writer's CPU seconds per second.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/io_uring.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static double clock_s(clockid_t c) {
    struct timespec t;
    clock_gettime(c, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static uint16_t ip_checksum(const uint8_t *p, int n) {
    uint32_t s = 0;
    for (int i = 0; i + 1 < n; i += 2) s += (uint32_t)p[i] << 8 | p[i + 1];
    while (s >> 16) s = (s & 0xffff) + (s >> 16);
    return (uint16_t)~s;
}

// A bare io_uring for batches of writes: submit BATCH, wait for all of them.
enum { BATCH = 32 };
static int ring_fd;
static unsigned *sq_tail, *sq_mask, *cq_head, *cq_tail, *cq_mask;
static struct io_uring_sqe *sqes;
static struct io_uring_cqe *cqes;

static int ring_setup(void) {
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    ring_fd = (int)syscall(__NR_io_uring_setup, 2 * BATCH, &p);
    if (ring_fd < 0) return -1;
    size_t sqsz = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    size_t cqsz = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    char *sq = mmap(NULL, sqsz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring_fd, IORING_OFF_SQ_RING);
    char *cq = mmap(NULL, cqsz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring_fd, IORING_OFF_CQ_RING);
    sqes = mmap(NULL, p.sq_entries * sizeof *sqes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring_fd, IORING_OFF_SQES);
    if (sq == MAP_FAILED || cq == MAP_FAILED || sqes == MAP_FAILED) return -1;
    sq_tail = (unsigned *)(sq + p.sq_off.tail); sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
    unsigned *array = (unsigned *)(sq + p.sq_off.array);
    for (unsigned i = 0; i < p.sq_entries; i++) array[i] = i;
    cq_head = (unsigned *)(cq + p.cq_off.head); cq_tail = (unsigned *)(cq + p.cq_off.tail);
    cq_mask = (unsigned *)(cq + p.cq_off.ring_mask); cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
    return 0;
}

// Writes frames[0..n) with one io_uring_enter; returns how many failed.
static long ring_write(int fd, uint8_t (*frames)[1514], int n) {
    unsigned t = *sq_tail;
    for (int k = 0; k < n; k++) {
        struct io_uring_sqe *e = &sqes[(t + k) & *sq_mask];
        memset(e, 0, sizeof *e);
        e->opcode = IORING_OP_WRITE; e->fd = fd; e->addr = (unsigned long)frames[k]; e->len = 1514;
        e->off = (unsigned long long)-1; e->rw_flags = RWF_NOWAIT;
    }
    __atomic_store_n(sq_tail, t + n, __ATOMIC_RELEASE);
    long failed = 0;
    int submitted = 0, reaped = 0;
    while (reaped < n) {
        long got = syscall(__NR_io_uring_enter, ring_fd, n - submitted, n - reaped, IORING_ENTER_GETEVENTS, NULL, 0);
        if (got < 0 && errno != EINTR && errno != EAGAIN && errno != EBUSY) {
            perror("tapflood: io_uring_enter");
            exit(1);
        }
        if (got > 0) submitted += (int)got;
        unsigned h = *cq_head;
        for (; h != __atomic_load_n(cq_tail, __ATOMIC_ACQUIRE); h++, reaped++)
            if (cqes[h & *cq_mask].res != 1514) failed++;
        __atomic_store_n(cq_head, h, __ATOMIC_RELEASE);
    }
    return failed;
}

static volatile long received;
static volatile int done;

static void *reader(void *arg) {
    int fd = *(int *)arg;
    char buf[2048];
    while (!done) {
        if (recv(fd, buf, sizeof buf, 0) > 0) received++;
    }
    return NULL;
}

int main(int argc, char **argv) {
    if ((argc != 4 && argc != 5) || (strcmp(argv[3], "drop") && strcmp(argv[3], "udp")) ||
        (argc == 5 && strcmp(argv[4], "uring"))) {
        fprintf(stderr, "usage: tapflood DEV COUNT drop|udp [uring]\n");
        return 2;
    }
    int uring = argc == 5;
    if (uring && ring_setup() < 0) { perror("tapflood: io_uring"); return 1; }
    long count = atol(argv[2]);
    if (count <= 0 || count > 100000000) { fprintf(stderr, "tapflood: COUNT must be 1...100000000\n"); return 2; }
    int udp = !strcmp(argv[3], "udp");

    int tap = open("/dev/net/tun", O_RDWR);
    if (tap < 0) { perror("tapflood: /dev/net/tun"); return 1; }
    struct ifreq ifr = {0};
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", argv[1]);
    if (ioctl(tap, TUNSETIFF, &ifr) < 0) { perror("tapflood: TUNSETIFF"); return 1; }
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq hw = {0};
    snprintf(hw.ifr_name, IFNAMSIZ, "%s", argv[1]);
    if (ioctl(s, SIOCGIFHWADDR, &hw) < 0) { perror("tapflood: SIOCGIFHWADDR"); return 1; }

    pthread_t th;
    int rx = -1;
    if (udp) {
        rx = socket(AF_INET, SOCK_DGRAM, 0);
        int big = 8 << 20;
        setsockopt(rx, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
        struct timeval tv = {0, 200000};
        setsockopt(rx, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(5009)};
        inet_pton(AF_INET, "10.0.0.1", &a.sin_addr);
        if (bind(rx, (void *)&a, sizeof a)) { perror("tapflood: bind 10.0.0.1:5009"); return 1; }
        pthread_create(&th, NULL, reader, &rx);
    }

    // Ethernet + IPv4 + UDP, 1514 bytes in all, from 10.0.0.2 (a made-up MAC) to the kernel.
    uint8_t f[1514] = {0};
    memcpy(f, hw.ifr_hwaddr.sa_data, 6);
    const uint8_t src_mac[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02};
    memcpy(f + 6, src_mac, 6);
    f[12] = 0x08; f[13] = 0x00;
    uint8_t *ip = f + 14;
    ip[0] = 0x45; ip[2] = 1500 >> 8; ip[3] = 1500 & 0xff; ip[6] = 0x40; ip[8] = 64; ip[9] = 17;
    ip[12] = 10; ip[13] = 0; ip[14] = 0; ip[15] = 2;
    ip[16] = 10; ip[17] = 0; ip[18] = 0; ip[19] = udp ? 1 : 99;
    uint8_t *u = ip + 20;
    u[0] = 5009 >> 8; u[1] = 5009 & 0xff; u[2] = 5009 >> 8; u[3] = 5009 & 0xff;
    u[4] = 1480 >> 8; u[5] = 1480 & 0xff;   // checksum 0: none (RFC 768)

    // The kernel must know 10.0.0.2's MAC for its replies (none are expected; harmless).
    double w0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
    long failed = 0;
    static uint8_t batch[BATCH][1514];
    for (long i = 0; i < count;) {
        int n = uring ? (count - i < BATCH ? (int)(count - i) : BATCH) : 1;
        for (int k = 0; k < n; k++, i++) {
            uint8_t *g = uring ? batch[k] : f, *gip = g + 14;
            if (uring) memcpy(g, f, sizeof f);   // each request needs its own frame until the submit returns
            gip[4] = (uint8_t)(i >> 8); gip[5] = (uint8_t)i;
            gip[10] = gip[11] = 0;
            uint16_t c = ip_checksum(gip, 20);
            gip[10] = c >> 8; gip[11] = c & 0xff;
        }
        if (uring) failed += ring_write(tap, batch, n);
        else if (write(tap, f, sizeof f) != (ssize_t)sizeof f) failed++;
    }
    double w = clock_s(CLOCK_MONOTONIC) - w0, c = clock_s(CLOCK_THREAD_CPUTIME_ID) - c0;
    if (udp) { usleep(300000); done = 1; pthread_join(th, NULL); }
    printf("tapflood %s%s: %ld frames in %.3f s: %.0f frames/s, %.2f Gbit/s of 1514-byte frames, writer %.2f CPU-s/s, "
           "write errors %ld%s",
           argv[3], uring ? " (io_uring, 32 per submit)" : "", count, w, count / w, count / w * 1514 * 8 / 1e9, c / w, failed, udp ? "" : "\n");
    if (udp) printf(", datagrams read %ld\n", received);
    return 0;
}
