// kperf: the kernel side of Skiff's benchmarks, using the kernel's own TCP.
//   kperf recv PORT                 accept one connection, read to EOF, print bytes and Gbit/s
//   kperf send HOST PORT BYTES      connect, write BYTES, shut down, print Gbit/s
//   kperf echo PORT                 serve 1-byte request/response (and any echo) until killed
//   kperf rr HOST PORT COUNT        COUNT 1-byte round trips: transactions/s, median and p99 µs
// Every call is bounded by a 30 s socket timeout.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void timeouts(int fd) {
    struct timeval tv = {30, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static int listener(int port) {
    int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (bind(l, (void *)&a, sizeof a) || listen(l, 128)) { perror("bind/listen"); exit(1); }
    timeouts(l);
    printf("listening\n");
    fflush(stdout);
    return l;
}

static int dial(const char *host, int port) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, host, &a.sin_addr);
    timeouts(s);
    if (connect(s, (void *)&a, sizeof a)) { perror("connect"); exit(1); }
    return s;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc >= 3 && !strcmp(argv[1], "recv")) {
        int l = listener(atoi(argv[2]));
        int c = accept(l, 0, 0);
        if (c < 0) { perror("accept"); return 1; }
        timeouts(c);
        static char buf[1 << 20];
        long long n = 0;
        double t0 = now();
        for (;;) {
            ssize_t r = read(c, buf, sizeof buf);
            if (r <= 0) break;
            n += r;
        }
        double dt = now() - t0;
        printf("received %lld bytes in %.3f s: %.3f Gbit/s\n", n, dt, n * 8 / dt / 1e9);
        return 0;
    }
    if (argc >= 5 && !strcmp(argv[1], "send")) {
        int s = dial(argv[2], atoi(argv[3]));
        long long total = atoll(argv[4]), n = 0;
        static char buf[1 << 20];
        memset(buf, 0x5a, sizeof buf);
        double t0 = now();
        while (n < total) {
            ssize_t r = write(s, buf, total - n < (long long)sizeof buf ? total - n : sizeof buf);
            if (r <= 0) { perror("write"); return 1; }
            n += r;
        }
        shutdown(s, SHUT_WR);
        char c;
        (void)read(s, &c, 1);
        double dt = now() - t0;
        printf("sent %lld bytes in %.3f s: %.3f Gbit/s\n", n, dt, n * 8 / dt / 1e9);
        return 0;
    }
    if (argc >= 3 && !strcmp(argv[1], "echo")) {
        int l = listener(atoi(argv[2]));
        for (;;) {
            int c = accept(l, 0, 0);
            if (c < 0) continue;
            int one = 1;
            setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            if (fork() == 0) {
                char buf[65536];
                ssize_t r;
                while ((r = read(c, buf, sizeof buf)) > 0) if (write(c, buf, r) != r) break;
                _exit(0);
            }
            close(c);
        }
    }
    if (argc >= 5 && !strcmp(argv[1], "rr")) {
        int s = dial(argv[2], atoi(argv[3])), one = 1;
        setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        int count = atoi(argv[4]);
        double *lat = malloc(sizeof(double) * count);
        char c = 'x';
        for (int i = 0; i < 100; i++) { if (write(s, &c, 1) != 1 || read(s, &c, 1) != 1) { perror("warm-up"); return 1; } }
        double t0 = now();
        for (int i = 0; i < count; i++) {
            double a = now();
            if (write(s, &c, 1) != 1 || read(s, &c, 1) != 1) { perror("rr"); return 1; }
            lat[i] = now() - a;
        }
        double dt = now() - t0;
        qsort(lat, count, sizeof(double), cmp);
        printf("rr %d transactions in %.3f s: %.0f/s median %.1f us p99 %.1f us\n", count, dt, count / dt,
               lat[count / 2] * 1e6, lat[(int)(count * 0.99)] * 1e6);
        return 0;
    }
    fprintf(stderr, "usage: kperf recv PORT | send HOST PORT BYTES | echo PORT | rr HOST PORT COUNT\n");
    return 2;
}
