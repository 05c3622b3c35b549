#!/usr/bin/env python3
"""A user-space stand-in for `tc qdisc add dev TAP root netem ...`, for kernels built without
sch_netem (CONFIG_NET_SCH_NETEM off).

    netem-relay.py --tap tap0 --veth vr0 [--loss 2] [--reorder 5] [--duplicate 1] [--delay-ms 1]
                   [--seconds 600] [--seed 1]

It owns the TAP device TAP (the kernel's interface, where the kernel has its address) and an
AF_PACKET socket on VETH, one end of a veth pair whose other end Skiff attaches to with
`--packet`. Frames the kernel sends on TAP are impaired as netem would impair them on TAP's
egress, then sent into the veth towards Skiff; frames from Skiff go to the kernel untouched.

The impairments follow netem's rules: each frame is lost with probability LOSS %, duplicated with
probability DUPLICATE %; with --reorder, REORDER % of the frames go at once and the rest wait
DELAY (netem's "reorder" needs a delay: the frames sent at once overtake the delayed ones).
Prints one summary line on exit (SIGTERM, SIGINT or --seconds). Needs root.
"""
import argparse
import fcntl
import heapq
import os
import random
import select
import signal
import socket
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def open_tap(name):
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
    return fd


def main():
    a = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a.add_argument("--tap", required=True)
    a.add_argument("--veth", required=True)
    a.add_argument("--loss", type=float, default=0.0)
    a.add_argument("--reorder", type=float, default=0.0)
    a.add_argument("--duplicate", type=float, default=0.0)
    a.add_argument("--delay-ms", type=float, default=0.0)
    a.add_argument("--seconds", type=float, default=600.0)
    a.add_argument("--seed", type=int, default=1)
    o = a.parse_args()
    for name in ("loss", "reorder", "duplicate"):
        if not 0 <= getattr(o, name) <= 100:
            a.error(f"--{name} must be a percentage 0...100")
    if o.delay_ms < 0 or o.seconds <= 0:
        a.error("--delay-ms must be >= 0 and --seconds > 0")
    if o.reorder > 0 and o.delay_ms == 0:
        a.error("--reorder needs --delay-ms (as netem's reorder needs a delay)")

    try:
        tap = open_tap(o.tap)
        pk = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        pk.bind((o.veth, 0))
        pk.setblocking(False)
    except OSError as e:
        print(f"netem-relay: {e}", file=sys.stderr)
        return 1

    rng = random.Random(o.seed)
    delay = o.delay_ms / 1000.0
    queue = []          # (due, sequence, frame): the delayed frames towards Skiff
    seq = 0
    n = {"from_kernel": 0, "lost": 0, "duplicated": 0, "reordered": 0, "to_kernel": 0}
    stop = [False]
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
    signal.signal(signal.SIGINT, lambda *_: stop.__setitem__(0, True))
    # A parent may have left them blocked (a blocked mask survives exec).
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    end = time.monotonic() + o.seconds
    print(f"netem-relay: relaying {o.tap} -> {o.veth} with loss {o.loss}% reorder {o.reorder}% "
          f"duplicate {o.duplicate}% delay {o.delay_ms} ms", flush=True)

    def to_skiff(frame):
        try:
            pk.send(frame)
        except OSError:
            pass   # a full veth queue drops, as a real link would

    while not stop[0] and time.monotonic() < end:
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            to_skiff(heapq.heappop(queue)[2])
        timeout = max(0.0, queue[0][0] - now) if queue else 0.05
        try:
            ready, _, _ = select.select([tap, pk], [], [], min(timeout, 0.05))
        except InterruptedError:
            continue
        if tap in ready:
            for _ in range(64):
                try:
                    frame = os.read(tap, 65536)
                except BlockingIOError:
                    break
                n["from_kernel"] += 1
                if rng.random() * 100 < o.loss:
                    n["lost"] += 1
                    continue
                copies = 2 if rng.random() * 100 < o.duplicate else 1
                if copies == 2:
                    n["duplicated"] += 1
                for _ in range(copies):
                    if delay == 0 or (o.reorder > 0 and rng.random() * 100 < o.reorder):
                        if delay > 0:
                            n["reordered"] += 1
                        to_skiff(frame)
                    else:
                        seq += 1
                        heapq.heappush(queue, (time.monotonic() + delay, seq, frame))
        if pk in ready:
            for _ in range(64):
                try:
                    frame, addr = pk.recvfrom(65536)
                except BlockingIOError:
                    break
                if addr[2] == PACKET_OUTGOING:
                    continue   # our own sends towards Skiff
                n["to_kernel"] += 1
                try:
                    os.write(tap, frame)
                except OSError:
                    pass
    print("netem-relay: " + " ".join(f"{k} {v}" for k, v in n.items()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
