// tcpflood: the raw cost of handing TCP data to a kernel socket through a TAP, the ceiling that
// a user-space TCP stack sending bulk data to the kernel over one TAP queue (MTU 1500, no
// offloads) lives under. tapflood.c measures frames that the kernel drops at IP or hands to a
// UDP socket; TCP receive costs more (tcp_rcv_established, the receive queue, waking the
// reader, ACKs), and on a TAP that cost runs inside each write().
//   tcpflood DEV BYTES PORT   play host 10.0.0.2 (MAC 02:00:00:00:00:02), open a connection to
//                             the kernel's listener at 10.0.0.1:PORT (e.g. `kperf recv PORT`),
//                             send BYTES bytes, close, and report.
// DEV must exist (ip tuntap add dev DEV mode tap) with 10.0.0.1/24 and be up; it is opened with
// IFF_TAP|IFF_NO_PI (no vnet header, so every checksum is computed here and each frame is one
// 1514-byte write). The kernel's MAC is DEV's own address (SIOCGIFHWADDR), as in tapflood. After
// attaching, tcpflood waits (at most 2 s) for DEV to be running: until the kernel's link-watch has
// seen the new carrier it drops what it sends there, such as its ARP request for 10.0.0.2.
//
// The cheapest TCP sender that still is one:
// - Handshake: SYN with MSS 1460, SACK-permitted, timestamps and window scale 7 (Linux's option
//   layout); the kernel must agree to timestamps and window scaling. So every data segment
//   carries the 12-byte timestamp option and 1448 bytes: 1514-byte frames, like Skiff's and
//   Linux's own at MTU 1500. SYN retransmitted each second (at most 5); a SYN-ACK seen again
//   after the handshake is answered with an ACK (at most 5 times).
// - Two threads, as a real stack has. The writer (main thread) only builds and write()s data
//   segments: one Ethernet/IPv4/TCP template, every payload the same constant 1448 bytes, so the
//   TCP checksum is a precomputed sum plus seq, flags, TSval and TSecr, and the IP checksum a
//   precomputed sum plus the IP id (checked against a from-scratch build at start). The reader
//   thread blocks in read() on the TAP, answers the kernel's ARP requests for 10.0.0.2, and
//   publishes the kernel's cumulative ACK and scaled window as one 64-bit atomic, with the
//   kernel's latest TSval (echoed as TSecr).
// - The writer never sends past snd_una + window. It keeps the window's right edge from its last
//   look and reloads it only when the next segment would cross it (Linux never moves the right
//   edge left); when the window is still full it sleeps on a condition variable that the reader
//   signals on its next ACK ("window waits", with the time spent waiting). PSH on the segment that
//   ends each 64 KiB of the stream (as a sender writing 64 KiB at a time), and on the last.
// - No loss is expected on a TAP. Should the ACK stop moving for 200 ms while the writer waits,
//   it goes back to snd_una and sends again (go-back-N, at most 50 times), or with nothing
//   outstanding sends a window probe (seq snd_una - 1); any of that is reported on stderr.
//   write() failing with EAGAIN/ENOBUFS/ENOMEM/EINTR is retried (bounded).
// - When all BYTES are acknowledged: FIN (retransmitted every 200 ms, at most 10), wait for the
//   kernel's ACK of it and its own FIN (which `kperf recv` sends once it has read to EOF), ACK
//   that. Everything is bounded: 120 s in all; a RST, data from the kernel, an ACK of unsent
//   data or a timeout ends the program with a message on stderr and exit status 1.
// Prints bytes, frames (retransmissions included), frames/s, the payload's Gbit/s and the
// frames' Gbit/s on the wire, the writer's CPU seconds per second (CLOCK_THREAD_CPUTIME_ID, so the
// kernel's receive path inside write() counts), how often it waited for the window, and the ACK
// reader's ACK count and CPU. Time runs from the first data segment to the ACK of the last byte.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <net/if_arp.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { MSS = 1448, HDR = 14 + 20 + 20 + 12, FRAME = HDR + MSS, MY_WSCALE = 7 };
enum { FIN = 0x01, SYN = 0x02, RST = 0x04, PSH = 0x08, ACK = 0x10 };
static const double TIMEOUT = 120, RTO = 0.2;
static const uint8_t my_mac[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02};
static const uint32_t my_ip = 0x0a000002, k_ip = 0x0a000001;   // 10.0.0.2 (us), 10.0.0.1 (kernel)

static int tap;
static uint8_t k_mac[6];
static uint16_t my_port, k_port;
static uint32_t iss, ts_base;
static double t_start;

// Written by the reader before it publishes the first SYN-ACK (sh.synacks), read-only after.
static uint32_t irs;
static int peer_wscale;

// Reader → writer, one cache line: the ACK state and a generation count bumped on every news.
static struct {
    _Atomic uint64_t una_wnd;      // snd_una << 32 | the scaled window
    _Atomic uint32_t ts_recent;    // the kernel's latest TSval
    _Atomic uint32_t gen;
    _Atomic uint32_t synacks;      // SYN-ACKs seen
    _Atomic uint32_t peer_fin;     // 1 once the kernel's FIN has arrived (its seq in fin_seq)
    _Atomic uint32_t fin_seq;
} sh __attribute__((aligned(64)));
// Writer → reader: the highest sequence number sent (stored before the write() that sends it).
static _Alignas(64) _Atomic uint32_t snd_max;
// Rarely written: the reader's failure, counts read at the end, the writer's sleep flag.
static _Alignas(64) _Atomic(const char *) failure;
static char fail_text[256];
static _Atomic long acks, dupacks, shrinks, arps, others;
static _Atomic int waiting;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv;

static double clock_s(clockid_t c) {
    struct timespec t;
    clock_gettime(c, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "tcpflood: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static int seq_lt(uint32_t a, uint32_t b) { return (int32_t)(a - b) < 0; }
static int seq_le(uint32_t a, uint32_t b) { return (int32_t)(a - b) <= 0; }
static void put16(uint8_t *p, uint32_t v) { p[0] = v >> 8; p[1] = v; }
static void put32(uint8_t *p, uint32_t v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v; }
static uint32_t get16(const uint8_t *p) { return (uint32_t)p[0] << 8 | p[1]; }
static uint32_t get32(const uint8_t *p) { return get16(p) << 16 | get16(p + 2); }

// The one's-complement sum of n bytes (n even) as big-endian 16-bit words, not folded.
static uint32_t sum16(const uint8_t *p, int n) {
    uint32_t s = 0;
    for (int i = 0; i + 1 < n; i += 2) s += (uint32_t)p[i] << 8 | p[i + 1];
    return s;
}
static uint16_t fold(uint32_t s) {
    while (s >> 16) s = (s & 0xffff) + (s >> 16);
    return (uint16_t)~s;
}

// Our TSval: milliseconds (the coarse clock, a vDSO read) from a made-up origin.
static uint32_t tsval(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &t);
    return ts_base + (uint32_t)(t.tv_sec * 1000 + t.tv_nsec / 1000000);
}

// The payload of every data segment: a constant pattern.
static uint8_t pattern[MSS];

// Builds a whole frame from scratch (used for SYN, pure ACKs, FIN, a short last segment, probes,
// and to check the fast path). Returns its length.
static int build(uint8_t *f, uint32_t seq, uint32_t ack, int flags, int len, uint16_t ipid,
                 uint32_t tsv, uint32_t tse) {
    int opt = flags & SYN ? 20 : 12, tcplen = 20 + opt + len;
    memcpy(f, k_mac, 6);
    memcpy(f + 6, my_mac, 6);
    f[12] = 0x08; f[13] = 0x00;
    uint8_t *ip = f + 14, *t = ip + 20, *o = t + 20;
    memset(ip, 0, 20 + 20 + opt);
    ip[0] = 0x45; put16(ip + 2, 20 + tcplen); put16(ip + 4, ipid); ip[6] = 0x40; ip[8] = 64; ip[9] = 6;
    put32(ip + 12, my_ip); put32(ip + 16, k_ip);
    put16(ip + 10, fold(sum16(ip, 20)));
    put16(t, my_port); put16(t + 2, k_port); put32(t + 4, seq); put32(t + 8, flags & ACK ? ack : 0);
    t[12] = (uint8_t)((20 + opt) / 4 << 4); t[13] = (uint8_t)flags;
    put16(t + 14, 65535);   // in the SYN unscaled, then 65535 << 7: we receive nothing anyway
    if (flags & SYN) {   // MSS, SACK-permitted + timestamps, NOP + window scale: Linux's layout
        o[0] = 2; o[1] = 4; put16(o + 2, 1460);
        o[4] = 4; o[5] = 2; o[6] = 8; o[7] = 10; put32(o + 8, tsv); put32(o + 12, 0);
        o[16] = 1; o[17] = 3; o[18] = 3; o[19] = MY_WSCALE;
    } else {             // NOP, NOP, timestamps
        o[0] = 1; o[1] = 1; o[2] = 8; o[3] = 10; put32(o + 4, tsv); put32(o + 8, tse);
    }
    for (int i = 0; i < len; i++) t[20 + opt + i] = pattern[i % MSS];
    uint8_t ph[12];
    put32(ph, my_ip); put32(ph + 4, k_ip); ph[8] = 0; ph[9] = 6; put16(ph + 10, tcplen);
    uint32_t s = sum16(ph, 12) + sum16(t, tcplen & ~1);
    if (tcplen & 1) s += (uint32_t)t[tcplen - 1] << 8;
    put16(t + 16, fold(s));
    return 14 + 20 + tcplen;
}

static long write_retries;

static void send_frame(const uint8_t *f, int n) {
    for (long tries = 0;; tries++) {
        ssize_t r = write(tap, f, n);
        if (r == n) return;
        if (r < 0 && (errno == EAGAIN || errno == ENOBUFS || errno == ENOMEM || errno == EINTR) && tries < 1000000) {
            write_retries++;
            sched_yield();
            continue;
        }
        if (r < 0) die("write to the TAP: %s", strerror(errno));
        die("short write to the TAP: %zd of %d bytes", r, n);
    }
}

static uint16_t ipid;

static void send_ctl(uint32_t seq, uint32_t ack, int flags) {
    uint8_t f[128];
    uint32_t next = seq + (flags & (SYN | FIN) ? 1 : 0);
    if (seq_lt(atomic_load(&snd_max), next)) atomic_store(&snd_max, next);
    send_frame(f, build(f, seq, ack, flags, 0, ipid++, tsval(), atomic_load(&sh.ts_recent)));
}

// ---- the reader thread ----

static void wake(void) {
    atomic_fetch_add(&sh.gen, 1);
    if (atomic_load(&waiting)) {
        pthread_mutex_lock(&mu);
        pthread_cond_broadcast(&cv);
        pthread_mutex_unlock(&mu);
    }
}

static void reader_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(fail_text, sizeof fail_text, fmt, ap);
    va_end(ap);
    atomic_store(&failure, fail_text);
    wake();
}

static void arp_in(const uint8_t *f, ssize_t n) {
    const uint8_t *a = f + 14;
    if (n < 42 || get16(a) != 1 || get16(a + 2) != 0x0800 || a[4] != 6 || a[5] != 4) return;
    if (get16(a + 6) != 1 || get32(a + 24) != my_ip) return;   // a request for 10.0.0.2
    uint8_t r[42];
    memcpy(r, a + 8, 6); memcpy(r + 6, my_mac, 6); r[12] = 0x08; r[13] = 0x06;
    uint8_t *b = r + 14;
    put16(b, 1); put16(b + 2, 0x0800); b[4] = 6; b[5] = 4; put16(b + 6, 2);
    memcpy(b + 8, my_mac, 6); put32(b + 14, my_ip);
    memcpy(b + 18, a + 8, 10);   // the asker's MAC and IP
    atomic_fetch_add(&arps, 1);
    if (write(tap, r, sizeof r) != (ssize_t)sizeof r) reader_fail("ARP reply: %s", strerror(errno));
}

static uint32_t r_una, r_wnd;   // the reader's own copy of what it published

// Returns 0 to go on reading, 1 when the reader is done (failure published).
static int tcp_in(const uint8_t *ip, ssize_t n) {
    if (n < 20 || ip[0] >> 4 != 4 || ip[9] != 6) goto other;
    int ihl = (ip[0] & 15) * 4, tot = get16(ip + 2);
    if (ihl < 20 || tot > n || tot < ihl + 20 || get32(ip + 12) != k_ip || get32(ip + 16) != my_ip) goto other;
    const uint8_t *t = ip + ihl;
    int doff = (t[12] >> 4) * 4, flags = t[13];
    if (get16(t) != k_port || get16(t + 2) != my_port) goto other;
    if (doff < 20 || ihl + doff > tot) { reader_fail("malformed TCP header from the kernel"); return 1; }
    uint32_t seq = get32(t + 4), ack = get32(t + 8), win = get16(t + 14);
    int len = tot - ihl - doff, mss = -1, ws = -1, ts = 0;
    uint32_t tsv = 0;
    for (int i = 20; i < doff;) {   // options
        int k = t[i];
        if (k == 0) break;
        if (k == 1) { i++; continue; }
        if (i + 1 >= doff || t[i + 1] < 2 || i + t[i + 1] > doff) break;
        if (k == 2 && t[i + 1] == 4) mss = get16(t + i + 2);
        if (k == 3 && t[i + 1] == 3) ws = t[i + 2];
        if (k == 8 && t[i + 1] == 10) { ts = 1; tsv = get32(t + i + 2); }
        i += t[i + 1];
    }
    if (flags & RST) { reader_fail("RST from the kernel (seq %u ack %u)", seq, ack); return 1; }
    if (flags & SYN) {
        if (!(flags & ACK) || ack != iss + 1) { reader_fail("unexpected SYN from the kernel (flags %#x ack %u, iss %u)", flags, ack, iss); return 1; }
        if (atomic_load(&sh.synacks) == 0) {
            if (!ts || ws < 0) { reader_fail("the kernel's SYN-ACK lacks %s", !ts ? "timestamps" : "window scaling"); return 1; }
            if (mss >= 0 && mss < 1460) { reader_fail("the kernel's MSS is %d, not 1460", mss); return 1; }
            irs = seq;
            peer_wscale = ws > 14 ? 14 : ws;
            r_una = ack; r_wnd = win;   // a SYN's window is never scaled
            atomic_store(&sh.ts_recent, tsv);
            atomic_store(&sh.una_wnd, (uint64_t)r_una << 32 | r_wnd);
        } else if (seq != irs) { reader_fail("a second SYN-ACK with another ISN"); return 1; }
        atomic_fetch_add(&sh.synacks, 1);
        wake();
        return 0;
    }
    if (atomic_load(&sh.synacks) == 0 || !(flags & ACK)) goto other;
    if (len > 0) { reader_fail("the kernel sent %d bytes of data", len); return 1; }
    atomic_fetch_add_explicit(&acks, 1, memory_order_relaxed);
    if (ts && seq_le(atomic_load_explicit(&sh.ts_recent, memory_order_relaxed), tsv))
        atomic_store_explicit(&sh.ts_recent, tsv, memory_order_relaxed);
    uint32_t max = atomic_load_explicit(&snd_max, memory_order_acquire);
    if (seq_lt(max, ack)) { reader_fail("the kernel acknowledged %u, past anything sent (%u)", ack, max); return 1; }
    if (!seq_lt(ack, r_una)) {   // not an old ACK: take its window
        uint32_t wnd = win << peer_wscale;
        if (seq_lt(ack + wnd, r_una + r_wnd)) atomic_fetch_add(&shrinks, 1);
        if (ack == r_una && wnd == r_wnd && !(flags & FIN) && ack != max) atomic_fetch_add(&dupacks, 1);
        r_una = ack; r_wnd = wnd;
        atomic_store_explicit(&sh.una_wnd, (uint64_t)ack << 32 | wnd, memory_order_release);
    }
    if ((flags & FIN) && !atomic_load(&sh.peer_fin)) {
        atomic_store(&sh.fin_seq, seq);
        atomic_store(&sh.peer_fin, 1);
    }
    wake();
    return 0;
other:
    atomic_fetch_add_explicit(&others, 1, memory_order_relaxed);
    return 0;
}

static void *reader(void *arg) {
    (void)arg;
    static uint8_t f[65536];
    for (;;) {
        ssize_t n = read(tap, f, sizeof f);   // a cancellation point: the writer ends us here
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            reader_fail("read from the TAP: %s", strerror(errno));
            return NULL;
        }
        if (n < 14) continue;
        uint32_t type = get16(f + 12);
        if (type == 0x0806) arp_in(f, n);
        else if (type == 0x0800) { if (tcp_in(f + 14, n - 14)) return NULL; }
        else atomic_fetch_add_explicit(&others, 1, memory_order_relaxed);
    }
}

// ---- the writer (main thread) ----

// The full-size data frame: built once, then only seq, flags, IP id, TSval, TSecr and the two
// checksums change. ip_base and tcp_base are the checksum sums with those fields zero.
static uint8_t tmpl[FRAME];
static uint32_t ip_base, tcp_base;
#define HDR_WORD ((32 / 4) << 12)   // TCP data offset 8 words; the flags are added per frame

static inline void fill(uint32_t seq, int fl, uint16_t id, uint32_t tsv, uint32_t tse) {
    uint8_t *ip = tmpl + 14, *t = ip + 20;
    put16(ip + 4, id);
    put16(ip + 10, fold(ip_base + id));
    uint32_t s = tcp_base + (seq >> 16) + (seq & 0xffff) + (HDR_WORD | (uint32_t)fl) + (tsv >> 16) + (tsv & 0xffff) +
                 (tse >> 16) + (tse & 0xffff);
    put32(t + 4, seq); t[13] = (uint8_t)fl; put32(t + 24, tsv); put32(t + 28, tse);
    put16(t + 16, fold(s));
}

static void check(void) {
    const char *m = atomic_load(&failure);
    if (m) die("%s", m);
    if (clock_s(CLOCK_MONOTONIC) - t_start > TIMEOUT) die("timed out after %.0f s", TIMEOUT);
}

// Sleeps until the reader publishes anything after generation g, or until `until` (monotonic s).
// The flag/generation pair makes a lost wake-up impossible: either the reader sees waiting set and
// signals under the mutex, or the generation has moved before we sleep.
static void wait_news(uint32_t g, double until) {
    struct timespec ts = {(time_t)until, (long)((until - (time_t)until) * 1e9)};
    pthread_mutex_lock(&mu);
    atomic_store(&waiting, 1);
    while (atomic_load(&sh.gen) == g && !atomic_load(&failure))
        if (pthread_cond_timedwait(&cv, &mu, &ts) == ETIMEDOUT) break;
    atomic_store(&waiting, 0);
    pthread_mutex_unlock(&mu);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: tcpflood DEV BYTES PORT\n");
        return 2;
    }
    long long bytes = atoll(argv[2]);
    int port = atoi(argv[3]);
    if (bytes <= 0 || bytes > (1LL << 40)) { fprintf(stderr, "tcpflood: BYTES must be 1...%lld\n", 1LL << 40); return 2; }
    if (port <= 0 || port > 65535) { fprintf(stderr, "tcpflood: PORT must be 1...65535\n"); return 2; }
    t_start = clock_s(CLOCK_MONOTONIC);
    k_port = (uint16_t)port;
    srand((unsigned)(getpid() ^ (unsigned)(t_start * 1e6)));
    my_port = (uint16_t)(40000 + rand() % 20000);
    if (my_port == k_port) my_port++;
    iss = (uint32_t)rand() << 1 ^ (uint32_t)rand();
    ts_base = (uint32_t)rand();
    for (int i = 0; i < MSS; i++) pattern[i] = (uint8_t)('a' + i % 26);

    // DEV's address is the kernel's MAC. Asked first, because TUNSETIFF would make a new TAP of a
    // name that does not exist.
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq hw = {0};
    snprintf(hw.ifr_name, IFNAMSIZ, "%s", argv[1]);
    if (ioctl(s, SIOCGIFHWADDR, &hw) < 0) die("%s: %s (ip tuntap add dev %s mode tap)", argv[1], strerror(errno), argv[1]);
    tap = open("/dev/net/tun", O_RDWR);
    if (tap < 0) { perror("tcpflood: /dev/net/tun"); return 1; }
    struct ifreq ifr = {0};
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", argv[1]);
    if (ioctl(tap, TUNSETIFF, &ifr) < 0) { perror("tcpflood: TUNSETIFF"); return 1; }
    memcpy(k_mac, hw.ifr_hwaddr.sa_data, 6);
    // Attaching gives the TAP its carrier, but the kernel starts transmitting on it only once its
    // link-watch work has run (until then it drops what it sends, e.g. the ARP request for our
    // SYN-ACK, which would cost a 1 s SYN retransmission): wait for IFF_RUNNING, at most 2 s.
    for (int i = 0; i < 2000; i++) {
        struct ifreq fl = {0};
        snprintf(fl.ifr_name, IFNAMSIZ, "%s", argv[1]);
        if (ioctl(s, SIOCGIFFLAGS, &fl) < 0) { perror("tcpflood: SIOCGIFFLAGS"); return 1; }
        if (!(fl.ifr_flags & IFF_UP)) die("%s is down (ip link set %s up)", argv[1], argv[1]);
        if (fl.ifr_flags & IFF_RUNNING) break;
        usleep(1000);
    }
    usleep(1000);
    close(s);

    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&cv, &ca);
    pthread_t rt;
    if (pthread_create(&rt, NULL, reader, NULL)) die("pthread_create failed");

    // Handshake.
    for (int tries = 0; atomic_load(&sh.synacks) == 0; tries++) {
        if (tries == 5) die("no SYN-ACK from 10.0.0.1:%d after 5 SYNs (is the listener up?)", port);
        uint32_t g = atomic_load(&sh.gen);
        send_ctl(iss, 0, SYN);
        double until = clock_s(CLOCK_MONOTONIC) + 1;
        while (atomic_load(&sh.synacks) == 0 && clock_s(CLOCK_MONOTONIC) < until) {
            check();
            wait_news(g, until);
            g = atomic_load(&sh.gen);
        }
    }
    check();
    uint32_t rcv_nxt = irs + 1, seen_synacks = 1;
    send_ctl(iss + 1, rcv_nxt, ACK);

    // The data frame template and its checksums' constant parts.
    build(tmpl, 0, rcv_nxt, ACK, MSS, 0, 0, 0);
    uint8_t *ip = tmpl + 14, *t = ip + 20;
    memset(ip + 4, 0, 2); memset(ip + 10, 0, 2);
    ip_base = sum16(ip, 20);
    memset(t + 4, 0, 4); memset(t + 12, 0, 2); memset(t + 16, 0, 2); memset(t + 24, 0, 8);
    uint8_t ph[12];
    put32(ph, my_ip); put32(ph + 4, k_ip); ph[8] = 0; ph[9] = 6; put16(ph + 10, 32 + MSS);
    tcp_base = sum16(ph, 12) + sum16(t, 32 + MSS);
    t[12] = HDR_WORD >> 8;
    {   // the fast path must agree with a from-scratch build: edge values, then 2000 random ones
        static uint8_t full[FRAME];
        uint32_t v[4];
        for (int i = 0; i < 2006; i++) {
            for (int k = 0; k < 4; k++)
                v[k] = i < 6 ? (i & 1 ? 0xffffffffu : 0) ^ (i & 2 ? 0x8000u : 0) ^ (i & 4 ? 1u : 0)
                             : (uint32_t)rand() << 16 ^ (uint32_t)rand();
            int fl = ACK | (i & 1 ? PSH : 0);
            fill(v[0], fl, (uint16_t)v[1], v[2], v[3]);
            build(full, v[0], rcv_nxt, fl, MSS, (uint16_t)v[1], v[2], v[3]);
            if (memcmp(tmpl, full, FRAME)) die("internal error: the incremental checksums disagree with a full build");
        }
    }

    // Bulk.
    const uint32_t first = iss + 1, end = first + (uint32_t)bytes;
    uint64_t off = 0;          // bytes sent (goes back on a go-back-N)
    uint64_t una_w = atomic_load(&sh.una_wnd);
    uint32_t una = (uint32_t)(una_w >> 32), edge = una + (uint32_t)una_w, last_una = una;
    long frames = 0, waits = 0, rexmits = 0, probes = 0;
    long long wire = 0;
    double waited = 0;
    clockid_t rclock;
    pthread_getcpuclockid(rt, &rclock);
    long acks0 = atomic_load(&acks);
    double w0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_THREAD_CPUTIME_ID), r0 = clock_s(rclock);
    double last_move = w0;
    for (;;) {
        if (atomic_load_explicit(&failure, memory_order_relaxed)) check();
        uint32_t nxt = first + (uint32_t)off;
        int len = off < (uint64_t)bytes ? (bytes - off < MSS ? (int)(bytes - off) : MSS) : 0;
        if (len && seq_le(nxt + len, edge)) {
            int fl = ACK | ((off + len) / 65536 != off / 65536 || off + len == (uint64_t)bytes ? PSH : 0);
            if (seq_lt(atomic_load_explicit(&snd_max, memory_order_relaxed), nxt + len))
                atomic_store_explicit(&snd_max, nxt + len, memory_order_release);
            uint32_t tse = atomic_load_explicit(&sh.ts_recent, memory_order_relaxed);
            if (len == MSS) {
                fill(nxt, fl, ipid, tsval(), tse);
                send_frame(tmpl, FRAME);
            } else {   // the short last segment
                static uint8_t last[FRAME];
                send_frame(last, build(last, nxt, rcv_nxt, fl, len, ipid, tsval(), tse));
            }
            ipid++;
            off += len;
            frames++;
            wire += HDR + len;
            if ((frames & 4095) == 0) check();
            continue;
        }
        // At the cached right edge (or everything sent): look at the latest ACK.
        uint32_t g = atomic_load(&sh.gen);
        una_w = atomic_load_explicit(&sh.una_wnd, memory_order_acquire);
        una = (uint32_t)(una_w >> 32);
        edge = una + (uint32_t)una_w;
        if (!len && una == end) break;
        if (len && seq_le(nxt + len, edge)) continue;
        if (atomic_load(&sh.synacks) != seen_synacks) {   // our handshake ACK was lost?
            seen_synacks = atomic_load(&sh.synacks);
            if (seen_synacks > 5) die("the kernel sent %u SYN-ACKs", seen_synacks);
            send_ctl(nxt, rcv_nxt, ACK);
        }
        if (atomic_load(&sh.peer_fin)) die("the kernel closed the connection before all data was sent");
        double now = clock_s(CLOCK_MONOTONIC);
        if (una != last_una) { last_una = una; last_move = now; }
        else if (now - last_move > RTO) {   // no ACK progress for 200 ms: resend, or probe
            if (una != nxt) {
                off -= (uint32_t)(nxt - una);
                if (++rexmits > 50) die("no ACK progress after 50 go-back-N retransmissions (snd_una %u, snd_nxt %u)", una, nxt);
            } else {
                probes++;
                send_ctl(una - 1, rcv_nxt, ACK);
            }
            last_move = now;
            continue;
        }
        check();
        if (len) waits++;
        wait_news(g, last_move + RTO + 0.001);
        if (len) waited += clock_s(CLOCK_MONOTONIC) - now;
    }
    double w = clock_s(CLOCK_MONOTONIC) - w0, c = clock_s(CLOCK_THREAD_CPUTIME_ID) - c0, r = clock_s(rclock) - r0;
    long nacks = atomic_load(&acks) - acks0;

    // Close: FIN, the kernel's ACK of it and its own FIN, our last ACK.
    const uint32_t fin = end;
    for (int tries = 0; una != fin + 1; tries++) {
        if (tries == 10) die("no ACK of our FIN after 10 tries");
        uint32_t g = atomic_load(&sh.gen);
        send_ctl(fin, rcv_nxt, FIN | ACK);
        double until = clock_s(CLOCK_MONOTONIC) + RTO;
        for (;;) {
            check();
            una = (uint32_t)(atomic_load(&sh.una_wnd) >> 32);
            if (una == fin + 1 || clock_s(CLOCK_MONOTONIC) >= until) break;
            wait_news(g, until);
            g = atomic_load(&sh.gen);
        }
    }
    for (double until = clock_s(CLOCK_MONOTONIC) + 5;;) {
        uint32_t g = atomic_load(&sh.gen);
        check();
        if (atomic_load(&sh.peer_fin)) break;
        if (clock_s(CLOCK_MONOTONIC) >= until) die("the kernel acknowledged our FIN but sent no FIN within 5 s");
        wait_news(g, until);
    }
    if (atomic_load(&sh.fin_seq) != rcv_nxt) die("the kernel's FIN is at %u, expected %u", atomic_load(&sh.fin_seq), rcv_nxt);
    send_ctl(fin + 1, rcv_nxt + 1, ACK);
    pthread_cancel(rt);
    pthread_join(rt, NULL);

    printf("TCP to a socket: %lld bytes, %ld frames in %.3f s: %.0f frames/s, %.2f Gbit/s of payload (%.2f on the wire), "
           "writer %.2f CPU-s/s, window waits %ld (%.3f s), ACK reader %.2f CPU-s/s (%ld ACKs)\n",
           bytes, frames, w, frames / w, bytes * 8 / w / 1e9, wire * 8 / w / 1e9, c / w, waits, waited, r / w, nacks);
    if (rexmits || probes || dupacks || shrinks || write_retries)
        fprintf(stderr, "tcpflood: warning: %ld go-back-N retransmissions, %ld window probes, %ld duplicate ACKs, "
                "%ld window shrinks, %ld write retries\n", rexmits, probes, (long)dupacks, (long)shrinks, write_retries);
    return 0;
}
