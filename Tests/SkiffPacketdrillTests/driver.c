/*
 * Drives libSkiffPacketdrill.so the way packetdrill does: dlopen(RTLD_NOW | RTLD_LOCAL |
 * RTLD_DEEPBIND), packetdrill_interface_init, then system calls and packets through the
 * table, checking every byte that comes out. Prints one "ok"/"not ok" line per check and
 * exits 0 only if all pass.
 *
 *   cc -I Sources/CSkiffPacketdrill/include driver.c -ldl -o driver && ./driver libSkiffPacketdrill.so
 */
#include "skiff_packetdrill.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <unistd.h>
#include <linux/sockios.h>

#ifndef TCP_CC_INFO
#define TCP_CC_INFO 26
#endif
#ifndef SO_MEMINFO
#define SO_MEMINFO 55
#endif
#ifndef SO_ZEROCOPY
#define SO_ZEROCOPY 60
#endif
#ifndef MSG_ZEROCOPY
#define MSG_ZEROCOPY 0x4000000
#endif
#ifndef SO_TIMESTAMPING
#define SO_TIMESTAMPING 37
#endif

static int failures, checks;
#define CHECK(cond, ...) do { checks++; if (cond) { printf("ok %d - ", checks); } \
    else { failures++; printf("not ok %d - ", checks); } printf(__VA_ARGS__); printf("\n"); } while (0)

static struct skiff_pd_table t;
static void *u;

/* The peer: 192.0.2.1:40000 talking to 192.168.0.1:8080. */
static const uint8_t peer[4] = {192, 0, 2, 1}, local[4] = {192, 168, 0, 1};

static uint16_t checksum(const uint8_t *p, size_t n, uint32_t sum) {
    for (size_t i = 0; i + 1 < n; i += 2) sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (n & 1) sum += (uint32_t)(p[n - 1] << 8);
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

static uint16_t tcp_checksum(const uint8_t *ip, size_t tcp_len) {
    uint8_t pseudo[12];
    memcpy(pseudo, ip + 12, 8);
    pseudo[8] = 0; pseudo[9] = 6; pseudo[10] = (uint8_t)(tcp_len >> 8); pseudo[11] = (uint8_t)tcp_len;
    uint32_t sum = 0;
    for (int i = 0; i < 12; i += 2) sum += (uint32_t)(pseudo[i] << 8 | pseudo[i + 1]);
    return checksum(ip + 20, tcp_len, sum);
}

/* Builds and injects a segment from the peer; returns netdev_send's result. */
static int inject(uint16_t sport, uint8_t flags, uint32_t seq, uint32_t ack, uint16_t win,
                  const uint8_t *opts, size_t optlen, size_t payload) {
    uint8_t p[4096] = {0};
    size_t tcp_len = 20 + optlen + payload, len = 20 + tcp_len;
    p[0] = 0x45; p[2] = (uint8_t)(len >> 8); p[3] = (uint8_t)len; p[6] = 0x40; p[8] = 64; p[9] = 6;
    memcpy(p + 12, peer, 4); memcpy(p + 16, local, 4);
    uint8_t *tcp = p + 20;
    tcp[0] = (uint8_t)(sport >> 8); tcp[1] = (uint8_t)sport; tcp[2] = 0x1f; tcp[3] = 0x90;
    uint32_t s = htonl(seq), a = htonl(ack);
    memcpy(tcp + 4, &s, 4); memcpy(tcp + 8, &a, 4);
    tcp[12] = (uint8_t)(((20 + optlen) / 4) << 4); tcp[13] = flags;
    tcp[14] = (uint8_t)(win >> 8); tcp[15] = (uint8_t)win;
    if (optlen) memcpy(tcp + 20, opts, optlen);
    for (size_t i = 0; i < payload; i++) tcp[20 + optlen + i] = (uint8_t)i;
    uint16_t c = tcp_checksum(p, tcp_len); tcp[16] = (uint8_t)(c >> 8); tcp[17] = (uint8_t)c;
    c = checksum(p, 20, 0); p[10] = (uint8_t)(c >> 8); p[11] = (uint8_t)c;
    return t.netdev_send(u, p, len);
}

/* One packet out of the stack. */
struct out { uint8_t b[65536]; size_t len; long long usecs; };
static struct out pkt;
static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static int next_packet(void) {
    pkt.len = sizeof pkt.b;
    if (t.netdev_receive(u, pkt.b, &pkt.len, &pkt.usecs) != 0) return -1;
    return pkt.len >= 40 ? 0 : -1;
}
#define TCP (pkt.b + 20)
#define SEQ be32(TCP + 4)
#define ACKNO be32(TCP + 8)
#define FLAGS (TCP[13])
#define PAYLOAD ((int)pkt.len - 20 - (TCP[12] >> 4) * 4)

static long long now_usecs(void) {
    struct timeval tv;
    t.gettimeofday(u, &tv, NULL);
    return (long long)tv.tv_sec * 1000000 + tv.tv_usec;
}

/* packetdrill's code events call the process's getsockopt on the live descriptor; with
 * scripts/packetdrill-preload.c preloaded (SKIFF_PD_PRELOAD_CHECK set by the test), the library
 * answers TCP_INFO, TCP_CC_INFO and SO_MEMINFO for its placeholders, the kernel the rest. */
static void live_getsockopt(int c) {
    if (!getenv("SKIFF_PD_PRELOAD_CHECK")) { CHECK(1, "live getsockopt: skipped (no preload shim)"); return; }
    uint8_t info[280];
    memset(info, 0xff, sizeof info);
    socklen_t n = sizeof info;
    CHECK(getsockopt(c, SOL_TCP, TCP_INFO, info, &n) == 0 && n == 280, "live TCP_INFO: 280 bytes, Linux 6.18's size (%u)", n);
    uint32_t snd_mss, cwnd;
    memcpy(&snd_mss, info + 16, 4); memcpy(&cwnd, info + 80, 4);
    CHECK(info[0] == 1 && (info[5] & 7) == 7 && snd_mss == 988 && cwnd == 10,
          "live TCP_INFO: established, TS+SACK+wscale, snd_mss 988, cwnd 10 (%u %#x %u %u)", info[0], info[5], snd_mss, cwnd);
    uint8_t cc[64];
    n = sizeof cc;
    CHECK(getsockopt(c, SOL_TCP, TCP_CC_INFO, cc, &n) == 0 && n == 0, "live TCP_CC_INFO: CUBIC has none, length 0 (%u)", n);
    uint32_t mem[9];
    memset(mem, 0, sizeof mem);
    n = sizeof mem;
    CHECK(getsockopt(c, SOL_SOCKET, SO_MEMINFO, mem, &n) == 0 && n == 36 && mem[1] > 0 && mem[3] > 0,
          "live SO_MEMINFO: nine values, rcvbuf %u sndbuf %u", mem[1], mem[3]);
    int type = 0;
    n = sizeof type;
    CHECK(getsockopt(c, SOL_SOCKET, SO_TYPE, &type, &n) == 0 && type == SOCK_DGRAM,
          "other options reach the kernel (the placeholder is a datagram socket)");
    int k = socket(AF_INET, SOCK_STREAM, 0);
    n = sizeof info;
    CHECK(k >= 0 && getsockopt(k, SOL_TCP, TCP_INFO, info, &n) == 0 && info[0] == 7,
          "TCP_INFO of a kernel socket comes from the kernel (state CLOSE)");
    if (k >= 0) close(k);
    /* sendfile(2) on the live descriptor goes through the library; nothing is sent here. */
    errno = 0;
    CHECK(sendfile(c, -1, NULL, 100) == -1 && errno == EBADF, "live sendfile from a bad file: EBADF");
    int z = open("/dev/null", O_RDONLY);
    off_t off = 0;
    CHECK(z >= 0 && sendfile(c, z, &off, 100) == 0 && off == 0, "live sendfile at end of file: 0, offset kept");
    CHECK(sendfile(c, z, &off, 0) == 0, "live sendfile of 0 bytes: 0");
    if (z >= 0) close(z);
}

static void passive_open_and_transfer(void) {
    int one = 1;
    int l = t.socket(u, AF_INET, SOCK_STREAM, IPPROTO_TCP);
    CHECK(l >= 3, "socket() is a small descriptor (%d)", l);
    CHECK(t.setsockopt(u, l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0, "SO_REUSEADDR");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(8080)};
    CHECK(t.bind(u, l, (struct sockaddr *)&a, sizeof a) == 0, "bind :8080");
    CHECK(t.listen(u, l, 1) == 0, "listen");

    long long t0 = now_usecs();
    CHECK(t0 > 1577836800LL * 1000000, "the clock starts at a wall-clock time (%lld)", t0);

    /* < S 0:0(0) win 32792 <mss 1000,sackOK,TS val 100 ecr 0,nop,wscale 7> */
    const uint8_t synopts[] = {2, 4, 0x03, 0xe8, 4, 2, 8, 10, 0, 0, 0, 100, 0, 0, 0, 0, 1, 3, 3, 7};
    CHECK(inject(40000, 0x02, 0, 0, 32792, synopts, sizeof synopts, 0) == 0, "inject SYN");
    CHECK(next_packet() == 0, "a SYN-ACK comes out");
    const uint8_t *ip = pkt.b;
    CHECK(pkt.len == 60 && ip[0] == 0x45 && (ip[2] << 8 | ip[3]) == 60, "SYN-ACK: IPv4, 20-byte header, 60 bytes");
    CHECK((ip[6] & 0x40) && ip[8] == 64 && ip[9] == 6, "SYN-ACK: DF, TTL 64, TCP");
    CHECK(checksum(ip, 20, 0) == 0, "SYN-ACK: IP checksum");
    CHECK(!memcmp(ip + 12, local, 4) && !memcmp(ip + 16, peer, 4), "SYN-ACK: 192.168.0.1 -> 192.0.2.1");
    CHECK(TCP[0] == 0x1f && TCP[1] == 0x90 && (TCP[2] << 8 | TCP[3]) == 40000, "SYN-ACK: ports 8080 -> 40000");
    CHECK(ACKNO == 1 && FLAGS == 0x12, "SYN-ACK: ack 1, flags SYN|ACK (%#x)", FLAGS);
    CHECK((TCP[12] >> 4) == 10, "SYN-ACK: 40-byte TCP header");
    CHECK((TCP[14] << 8 | TCP[15]) == 65535, "SYN-ACK: window 65535 (%d)", TCP[14] << 8 | TCP[15]);
    CHECK(tcp_checksum(ip, 40) == 0, "SYN-ACK: TCP checksum");
    const uint8_t *o = TCP + 20;
    const uint8_t expect_head[] = {2, 4, 0x05, 0xb4, 4, 2, 8, 10};
    CHECK(!memcmp(o, expect_head, 8), "SYN-ACK options: mss 1460, sackOK, TS (Linux's order)");
    CHECK(be32(o + 12) == 100, "SYN-ACK options: TS ecr echoes 100");
    CHECK(o[16] == 1 && o[17] == 3 && o[18] == 3 && o[19] == 8, "SYN-ACK options: nop, wscale 8 (15 MiB tcp_rmem)");
    CHECK(pkt.usecs >= t0 && pkt.usecs - t0 < 1000, "SYN-ACK left at the time of the SYN (%lld us later)", pkt.usecs - t0);
    uint32_t iss = SEQ, tsval = be32(o + 8);

    /* < . 1:1(0) ack 1 win 257 <nop,nop,TS val 110 ecr tsval> */
    uint8_t ts[12] = {1, 1, 8, 10, 0, 0, 0, 110};
    ts[8] = (uint8_t)(tsval >> 24); ts[9] = (uint8_t)(tsval >> 16); ts[10] = (uint8_t)(tsval >> 8); ts[11] = (uint8_t)tsval;
    t.usleep(u, 10000);
    CHECK(inject(40000, 0x10, 1, iss + 1, 257, ts, sizeof ts, 0) == 0, "inject the handshake's ACK");
    struct sockaddr_in from; socklen_t fromlen = sizeof from;
    int c = t.accept(u, l, (struct sockaddr *)&from, &fromlen);
    CHECK(c >= 3 && c != l, "accept() = %d", c);
    CHECK(fromlen == sizeof from && from.sin_port == htons(40000) && from.sin_addr.s_addr == htonl(0xc0000201),
          "accept() reports the peer 192.0.2.1:40000");
    live_getsockopt(c);

    /* write 3000 bytes: 988-byte segments (MSS 1000 less 12 of timestamps), PSH on the last. */
    static uint8_t data[8192];
    long long tw = now_usecs();
    CHECK(t.write(u, c, data, 3000) == 3000, "write 3000 bytes");
    uint32_t expect = iss + 1;
    int sizes[4] = {988, 988, 988, 36}, ok = 1;
    for (int i = 0; i < 4; i++) {
        if (next_packet() != 0 || SEQ != expect || PAYLOAD != sizes[i] || ACKNO != 1 || !(FLAGS & 0x10)
            || pkt.usecs < tw || pkt.usecs - tw > 100 || tcp_checksum(pkt.b, pkt.len - 20) != 0) ok = 0;
        if (i == 3 && !(FLAGS & 0x08)) ok = 0;
        expect += (uint32_t)PAYLOAD;
    }
    CHECK(ok, "> . 1:989(988) 989:1977(988) 1977:2965(988) P. 2965:3001(36), all at once, checksums good");

    /* The ACK for all of it frees the queue. */
    t.usleep(u, 10000);
    CHECK(inject(40000, 0x10, 1, iss + 3001, 257, ts, sizeof ts, 0) == 0, "inject ack 3001");
    int outq = -1;
    CHECK(t.ioctl(u, c, SIOCOUTQ, &outq) == 0 && outq == 0, "SIOCOUTQ is 0 after the ACK (%d)", outq);

    /* An ACK withheld: the segment is sent again after the probe / RTO timer. */
    long long ts1 = now_usecs();
    CHECK(t.write(u, c, data, 100) == 100 && next_packet() == 0 && SEQ == iss + 3001 && PAYLOAD == 100,
          "write 100: > P. 3001:3101(100)");
    long long sent = pkt.usecs;
    CHECK(next_packet() == 0 && SEQ == iss + 3001 && PAYLOAD == 100, "without an ACK it is sent again");
    long long gap = pkt.usecs - sent;
    CHECK(gap >= 10000 && gap <= 1500000, "the retransmission waits for its timer (%lld us)", gap);
    CHECK(sent >= ts1 && now_usecs() >= pkt.usecs, "virtual time moved to the retransmission");
    CHECK(inject(40000, 0x10, 1, iss + 3101, 257, ts, sizeof ts, 0) == 0, "inject ack 3101");

    /* The peer sends data; read it. */
    CHECK(inject(40000, 0x18, 1, iss + 3101, 257, ts, sizeof ts, 500) == 0, "inject P. 1:501(500)");
    int inq = -1;
    CHECK(t.ioctl(u, c, FIONREAD, &inq) == 0 && inq == 500, "FIONREAD is 500 (%d)", inq);
    uint8_t buf[1000];
    CHECK(t.read(u, c, buf, sizeof buf) == 500 && buf[499] == (uint8_t)499, "read returns the 500 bytes");

    /* Close both ways: our FIN, the peer's FIN, our last ACK. */
    CHECK(t.close(u, c) == 0, "close()");
    int fin = 0;
    for (int i = 0; i < 3 && next_packet() == 0; i++) if (FLAGS & 0x01) { fin = 1; break; }
    CHECK(fin && SEQ == iss + 3101, "> F. 3101:3101(0)");
    CHECK(inject(40000, 0x11, 501, iss + 3102, 257, ts, sizeof ts, 0) == 0, "inject F. 501:501(0) ack 3102");
    CHECK(next_packet() == 0 && FLAGS == 0x10 && ACKNO == 502 && SEQ == iss + 3102, "> . 3102:3102(0) ack 502");
    CHECK(t.close(u, l) == 0, "close the listener");
    CHECK(t.close(u, c) == -1 && errno == EBADF, "close() again: EBADF");
}

static void nonblocking_connect(void) {
    int s = t.socket(u, AF_INET, SOCK_STREAM, 0);
    CHECK(t.fcntl(u, s, F_SETFL, O_NONBLOCK) == 0, "fcntl(F_SETFL, O_NONBLOCK)");
    CHECK(t.fcntl(u, s, F_GETFL) & O_NONBLOCK, "F_GETFL shows O_NONBLOCK");
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(80)};
    to.sin_addr.s_addr = htonl(0xc0000201);
    CHECK(t.connect(u, s, (struct sockaddr *)&to, sizeof to) == -1 && errno == EINPROGRESS, "connect: EINPROGRESS");
    CHECK(next_packet() == 0 && FLAGS == 0x02 && pkt.len == 60, "> S 0:0(0), 40 bytes of options");
    const uint8_t *o = TCP + 20;
    CHECK(o[0] == 2 && o[1] == 4 && o[4] == 4 && o[5] == 2 && o[6] == 8 && o[7] == 10 && o[16] == 1 && o[17] == 3 && o[18] == 3,
          "SYN options: mss, sackOK, TS, nop, wscale");
    CHECK(t.connect(u, s, (struct sockaddr *)&to, sizeof to) == -1 && errno == EALREADY, "connect again: EALREADY");
    uint32_t iss = SEQ;
    uint16_t sport = (uint16_t)(TCP[0] << 8 | TCP[1]);
    /* The peer refuses: RST|ACK from port 80 to our port. */
    uint8_t p[40] = {0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6};
    memcpy(p + 12, peer, 4); memcpy(p + 16, local, 4);
    p[20] = 0; p[21] = 80; p[22] = (uint8_t)(sport >> 8); p[23] = (uint8_t)sport;
    uint32_t a = htonl(iss + 1); memcpy(p + 28, &a, 4);
    p[32] = 0x50; p[33] = 0x14;
    uint16_t c = tcp_checksum(p, 20); p[36] = (uint8_t)(c >> 8); p[37] = (uint8_t)c;
    c = checksum(p, 20, 0); p[10] = (uint8_t)(c >> 8); p[11] = (uint8_t)c;
    CHECK(t.netdev_send(u, p, 40) == 0, "inject R. 0:0(0) ack 1");
    CHECK(t.connect(u, s, (struct sockaddr *)&to, sizeof to) == -1 && errno == ECONNREFUSED, "connect: ECONNREFUSED");
    uint8_t b[10];
    ssize_t r = t.read(u, s, b, sizeof b);
    CHECK(r == 0 || (r == -1 && (errno == ENOTCONN || errno == EAGAIN)), "read on it returns at once (%zd)", r);
    CHECK(t.close(u, s) == 0, "close");
}

static void malformed_input(void) {
    CHECK(t.netdev_send(u, NULL, 40) == -1 && errno == EFAULT, "netdev_send(NULL): EFAULT");
    uint8_t junk[64];
    for (int i = 0; i < 64; i++) junk[i] = (uint8_t)(i * 37 + 11);
    CHECK(t.netdev_send(u, junk, 10) == -1 && errno == EINVAL, "a 10-byte packet: EINVAL");
    junk[0] = 0x60;
    CHECK(t.netdev_send(u, junk, 64) == -1 && errno == EINVAL, "not IPv4: EINVAL");
    junk[0] = 0x45; junk[2] = 0xff; junk[3] = 0xff;
    CHECK(t.netdev_send(u, junk, 64) == -1 && errno == EINVAL, "total length past the bytes: EINVAL");
    junk[2] = 0; junk[3] = 64;
    CHECK(t.netdev_send(u, junk, 64) == 0, "IPv4-shaped garbage goes in (and is dropped by the stack)");
    size_t n = 0; long long us;
    CHECK(t.netdev_receive(u, NULL, &n, &us) == -1 && errno == EFAULT, "netdev_receive(NULL): EFAULT");
    uint8_t b[16];
    CHECK(t.read(u, 999, b, sizeof b) == -1 && errno == EBADF, "read(999): EBADF");
    CHECK(t.write(u, -1, b, sizeof b) == -1 && errno == EBADF, "write(-1): EBADF");
    CHECK(t.close(u, 12345) == -1 && errno == EBADF, "close(12345): EBADF");
    int one = 1;
    CHECK(t.setsockopt(u, 777, SOL_SOCKET, SO_REUSEADDR, &one, 4) == -1 && errno == EBADF, "setsockopt(777): EBADF");
    CHECK(t.socket(u, AF_INET6, SOCK_STREAM, 0) == -1 && errno == EAFNOSUPPORT, "socket(AF_INET6): EAFNOSUPPORT");
    int s = t.socket(u, AF_INET, SOCK_STREAM, 0);
    CHECK(t.setsockopt(u, s, SOL_SOCKET, SO_REUSEADDR, &one, 2) == -1 && errno == EINVAL, "setsockopt with a short length: EINVAL");
    CHECK(t.setsockopt(u, s, SOL_TCP, 9999, &one, 4) == -1 && errno == ENOPROTOOPT, "unknown option: ENOPROTOOPT");
    CHECK(t.fcntl(u, s, 9999, 0) == -1 && errno == EINVAL, "fcntl(9999): EINVAL");
    CHECK(t.ioctl(u, s, 0x1234, &one) == -1 && errno == ENOTTY, "ioctl(0x1234): ENOTTY");
    struct sockaddr_in a = {.sin_family = AF_INET};
    CHECK(t.bind(u, s, (struct sockaddr *)&a, 3) == -1 && errno == EINVAL, "bind with a short address: EINVAL");
    CHECK(t.bind(u, s, NULL, 16) == -1 && errno == EFAULT, "bind(NULL): EFAULT");
    int fds[2];
    CHECK(t.pipe(u, fds) == -1 && errno == ENOSYS, "pipe: ENOSYS");
    CHECK(t.close(u, s) == 0, "close");
    CHECK(t.socket(NULL, AF_INET, SOCK_STREAM, 0) == -1 && errno == EINVAL, "a NULL userdata: EINVAL");
}

/* SO_ZEROCOPY, SO_TIMESTAMPING, MSG_ZEROCOPY and recvmsg(MSG_ERRQUEUE) with bad arguments. */
static void error_queue_malformed(void) {
    int s = t.socket(u, AF_INET, SOCK_STREAM, 0);
    int v = 2, one = 1, got = -1;
    socklen_t n = sizeof got;
    CHECK(t.setsockopt(u, s, SOL_SOCKET, SO_ZEROCOPY, &v, 4) == -1 && errno == EINVAL, "SO_ZEROCOPY 2: EINVAL");
    CHECK(t.setsockopt(u, s, SOL_SOCKET, SO_ZEROCOPY, &one, 2) == -1 && errno == EINVAL, "SO_ZEROCOPY, 2-byte length: EINVAL");
    CHECK(t.setsockopt(u, s, SOL_SOCKET, SO_ZEROCOPY, NULL, 4) == -1 && errno == EFAULT, "SO_ZEROCOPY, NULL value: EFAULT");
    CHECK(t.setsockopt(u, s, SOL_SOCKET, SO_ZEROCOPY, &one, 4) == 0, "SO_ZEROCOPY 1");
    CHECK(t.getsockopt(u, s, SOL_SOCKET, SO_ZEROCOPY, &got, &n) == 0 && got == 1 && n == 4, "getsockopt SO_ZEROCOPY: 1");
    v = 1 << 7; /* SOF_TIMESTAMPING_OPT_ID before connecting */
    CHECK(t.setsockopt(u, s, SOL_SOCKET, SO_TIMESTAMPING, &v, 4) == -1 && errno == EINVAL, "OPT_ID on a closed socket: EINVAL");
    v = 1 << 20;
    CHECK(t.setsockopt(u, s, SOL_SOCKET, SO_TIMESTAMPING, &v, 4) == -1 && errno == EINVAL, "an unknown SOF_ bit: EINVAL");
    int ts[2] = {1 << 4, 0}; /* struct so_timestamping: SOF_TIMESTAMPING_SOFTWARE */
    CHECK(t.setsockopt(u, s, SOL_SOCKET, SO_TIMESTAMPING, ts, sizeof ts) == 0, "SO_TIMESTAMPING as struct so_timestamping");
    int back[2] = {-1, -1};
    n = sizeof back;
    CHECK(t.getsockopt(u, s, SOL_SOCKET, SO_TIMESTAMPING, back, &n) == 0 && n == 8 && back[0] == 1 << 4 && back[1] == 0,
          "getsockopt SO_TIMESTAMPING: flags, bind_phc");
    uint8_t data[8];
    CHECK(t.send(u, s, data, sizeof data, MSG_ZEROCOPY) == -1 && errno == EPIPE, "MSG_ZEROCOPY send, not connected: EPIPE");
    struct iovec iov = {.iov_base = data, .iov_len = sizeof data};
    uint8_t control[64];
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
    CHECK(t.recvmsg(u, s, &m, MSG_ERRQUEUE) == -1 && errno == EAGAIN, "MSG_ERRQUEUE on an empty queue: EAGAIN");
    CHECK(t.recvmsg(u, s, &m, MSG_ERRQUEUE | MSG_PEEK | MSG_WAITALL) == -1 && errno == EAGAIN,
          "MSG_ERRQUEUE|MSG_PEEK|MSG_WAITALL, empty: EAGAIN at once");
    CHECK(t.recv(u, s, data, sizeof data, MSG_ERRQUEUE) == -1 && errno == EAGAIN, "recv(MSG_ERRQUEUE), empty: EAGAIN");
    CHECK(t.recvmsg(u, s, NULL, MSG_ERRQUEUE) == -1 && errno == EFAULT, "recvmsg(NULL msghdr): EFAULT");
    m.msg_iovlen = 5000;
    CHECK(t.recvmsg(u, s, &m, MSG_ERRQUEUE) == -1 && errno == EMSGSIZE, "MSG_ERRQUEUE with 5000 iovecs: EMSGSIZE");
    struct iovec bad = {.iov_base = NULL, .iov_len = 10};
    m.msg_iov = &bad; m.msg_iovlen = 1;
    CHECK(t.recvmsg(u, s, &m, MSG_ERRQUEUE) == -1 && errno == EFAULT, "MSG_ERRQUEUE, NULL iov_base: EFAULT");
    m.msg_iov = &iov; m.msg_control = NULL; m.msg_controllen = 1000;
    CHECK(t.recvmsg(u, s, &m, MSG_ERRQUEUE) == -1 && errno == EAGAIN, "MSG_ERRQUEUE, NULL msg_control: EAGAIN when empty");
    CHECK(t.recvmsg(u, 4242, &m, MSG_ERRQUEUE) == -1 && errno == EBADF, "MSG_ERRQUEUE on 4242: EBADF");
    int ep = t.epoll_create(u, 1);
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLEXCLUSIVE | EPOLLONESHOT, .data.fd = s};
    CHECK(t.epoll_ctl(u, ep, EPOLL_CTL_ADD, s, &ev) == -1 && errno == EINVAL, "EPOLLEXCLUSIVE|EPOLLONESHOT: EINVAL");
    ev.events = EPOLLOUT | EPOLLET | EPOLLEXCLUSIVE;
    CHECK(t.epoll_ctl(u, ep, EPOLL_CTL_ADD, s, &ev) == 0, "EPOLLOUT|EPOLLET|EPOLLEXCLUSIVE");
    CHECK(t.epoll_ctl(u, ep, EPOLL_CTL_MOD, s, &ev) == -1 && errno == EINVAL, "EPOLL_CTL_MOD with EPOLLEXCLUSIVE: EINVAL");
    CHECK(t.close(u, ep) == 0 && t.close(u, s) == 0, "close");
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: %s libSkiffPacketdrill.so\n", argv[0]); return 2; }
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (!h) { fprintf(stderr, "dlopen: %s\n", dlerror()); return 2; }
    void (*init)(const char *, struct skiff_pd_table *) =
        (void (*)(const char *, struct skiff_pd_table *))dlsym(h, "packetdrill_interface_init");
    CHECK(init != NULL, "packetdrill_interface_init is exported");
    if (!init) return 1;
    init("local_ip=192.168.0.1,netmask=255.255.0.0,gateway=192.168.0.1", NULL);
    CHECK(1, "init with a NULL table returns");

    /* Garbage flags: reported on stderr, the defaults are used. */
    memset(&t, 0, sizeof t);
    init("local_ip=banana,,netmask=255.0.255.0,frobnicate=1", &t);
    CHECK(t.userdata && t.socket && t.fcntl && t.ioctl && t.splice, "garbage flags: a working table anyway");
    t.free(t.userdata);
    memset(&t, 0, sizeof t);
    init(NULL, &t);
    CHECK(t.userdata && t.socket, "NULL flags: the defaults");
    t.free(t.userdata);

    /* sysctl=0: packetdrill's defaults, not this machine's net.ipv4.tcp_* settings. */
    memset(&t, 0, sizeof t);
    init("sysctl=0", &t);
    u = t.userdata;
    CHECK(u && t.free && t.socket && t.netdev_send && t.netdev_receive && t.usleep && t.gettimeofday
          && t.epoll_wait && t.pipe && t.splice, "every callback filled in");
    passive_open_and_transfer();
    nonblocking_connect();
    malformed_input();
    error_queue_malformed();
    t.free(u);
    printf("%d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}
