#!/usr/bin/env bash
# Benchmarks of Skiff against the Linux kernel on this machine (figures, not tests). Root only;
# everything runs in network namespaces this script creates and removes.
#
#   scripts/bench-linux.sh                  1 GiB bulk each way, 20000 round trips
#   BYTES=268435456 RR=5000 scripts/bench-linux.sh
#
# Rows: the raw ceiling of 1514-byte TAP writes (scripts/bench/tapflood.c: frames dropped at IP,
# UDP datagrams to a socket, one write() each or 32 per io_uring submission) and of TCP data
# handed to a kernel socket by the cheapest possible sender (scripts/bench/tcpflood.c:
# 1448-byte segments, one write each, into `kperf recv`), the figures to hold Skiff→kernel
# without offload against; bulk TCP Skiff→kernel and kernel→Skiff over one TAP queue at MTU
# 1500, without offloads (with io_uring, Skiff's default, and with --no-io-uring: one writev
# per frame, as the raw ceilings write) and with the vnet-header offloads; 1-byte
# request/response (kernel client, Skiff echo service); and the kernel↔kernel baseline over a
# veth pair between two namespaces, in the same run. CPU: the Skiff process's user+system
# seconds per second of transfer, and the whole machine's busy cores (/proc/stat) during the
# transfer.
set -euo pipefail
cd "$(dirname "$0")/.."
SKIFF=${SKIFF_BIN:-.build/release/skiff}
BYTES=${BYTES:-1073741824}
RR=${RR:-20000}
[ "$(id -u)" = 0 ] || { echo "bench-linux: needs root" >&2; exit 1; }
[ -x "$SKIFF" ] || { echo "bench-linux: no $SKIFF (swift build -c release --product skiff)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/skiff-bench.XXXXXX)
cc -O2 -o "$WORK/kperf" scripts/bench/kperf.c
cc -O2 -o "$WORK/tapflood" scripts/bench/tapflood.c -lpthread
cc -O2 -o "$WORK/tcpflood" scripts/bench/tcpflood.c -lpthread
K="$WORK/kperf"
NS=skiff-bench-$$
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  for n in "$NS" "$NS-a" "$NS-b"; do ip netns del "$n" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

busy() { awk '/^cpu /{print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8}' /proc/stat; }
# cores busy between two busy() samples
cores() { awk -v a="$1" -v b="$2" -v c="$3" -v d="$4" -v n="$(nproc)" 'BEGIN{ if (d>b) printf "%.2f", (c-a)/(d-b)*n; else print "?" }'; }

tap_ns() {
  ip netns del "$NS" 2>/dev/null || true
  ip netns add "$NS"
  ip -n "$NS" link set lo up
  ip netns exec "$NS" ip tuntap add dev tap0 mode tap
  ip -n "$NS" addr add 10.0.0.1/24 dev tap0
  ip -n "$NS" link set tap0 up
}

gbit() { sed -n 's/.*: \([0-9.]*\) Gbit\/s.*/\1/p' "$1" | tail -1; }
skiffcores() { sed -n 's/.*(\([0-9.]*\) cores).*/\1/p' "$1" | tail -1; }
row() { printf "%-44s %10s %14s %12s\n" "$1" "$2" "$3" "$4"; }
echo "Skiff vs Linux on $(nproc) cores, kernel $(uname -r), $((BYTES >> 20)) MiB per transfer"
row "case" "Gbit/s" "skiff cores" "busy cores"

bulk_skiff_to_kernel() { # $1 = extra skiff options
  tap_ns
  ip netns exec "$NS" "$K" recv 5001 > "$WORK/krecv" & PIDS+=($!)
  sleep 0.3
  read -r a b < <(busy)
  ip netns exec "$NS" "$SKIFF" send --tap tap0 --address 10.0.0.2/24 --to 10.0.0.1:5001 --bytes "$BYTES" --no-digest $1 > "$WORK/send"
  read -r c d < <(busy)
  wait "${PIDS[-1]}" || true
  row "TCP Skiff→kernel, TAP, MTU 1500 $2" "$(gbit "$WORK/send")" "$(skiffcores "$WORK/send")" "$(cores "$a" "$b" "$c" "$d")"
}

bulk_kernel_to_skiff() {
  tap_ns
  ip netns exec "$NS" "$SKIFF" recv --tap tap0 --address 10.0.0.2/24 --port 5002 --no-digest $1 > "$WORK/recv" & PIDS+=($!)
  for _ in $(seq 50); do grep -q listening "$WORK/recv" 2>/dev/null && break; sleep 0.1; done
  read -r a b < <(busy)
  ip netns exec "$NS" "$K" send 10.0.0.2 5002 "$BYTES" > "$WORK/ksend"
  read -r c d < <(busy)
  wait "${PIDS[-1]}" || true
  row "TCP kernel→Skiff, TAP, MTU 1500 $2" "$(gbit "$WORK/recv")" "$(skiffcores "$WORK/recv")" "$(cores "$a" "$b" "$c" "$d")"
}

rr_skiff() { # $1 = extra skiff options, $2 = label
  tap_ns
  ip netns exec "$NS" "$SKIFF" up --tap tap0 --address 10.0.0.2/24 --serve echo:7 $1 > "$WORK/up" & PIDS+=($!)
  for _ in $(seq 50); do grep -q "skiff up:" "$WORK/up" 2>/dev/null && break; sleep 0.1; done
  local r; r=$(ip netns exec "$NS" "$K" rr 10.0.0.2 7 "$RR")
  kill -INT "${PIDS[-1]}"; wait "${PIDS[-1]}" || true
  echo "1-byte request/response, kernel client → Skiff echo over TAP $2: $r"
}

veth_ns() {
  for n in "$NS-a" "$NS-b"; do ip netns del "$n" 2>/dev/null || true; ip netns add "$n"; ip -n "$n" link set lo up; done
  ip link add vb0 netns "$NS-a" type veth peer name vb1 netns "$NS-b"
  ip -n "$NS-a" addr add 10.0.0.1/24 dev vb0; ip -n "$NS-a" link set vb0 up
  ip -n "$NS-b" addr add 10.0.0.2/24 dev vb1; ip -n "$NS-b" link set vb1 up
}

kernel_kernel() {
  veth_ns
  ip netns exec "$NS-b" "$K" recv 5001 > "$WORK/krecv" & PIDS+=($!)
  sleep 0.3
  read -r a b < <(busy)
  ip netns exec "$NS-a" "$K" send 10.0.0.2 5001 "$BYTES" > "$WORK/ksend"
  read -r c d < <(busy)
  wait "${PIDS[-1]}" || true
  row "TCP kernel→kernel, veth, MTU 1500 (offloads on)" "$(gbit "$WORK/ksend")" "-" "$(cores "$a" "$b" "$c" "$d")"
  ip netns exec "$NS-a" ethtool -K vb0 tso off gso off tx off >/dev/null 2>&1 || true
  ip netns exec "$NS-b" ethtool -K vb1 tso off gso off tx off gro off >/dev/null 2>&1 || true
  ip netns exec "$NS-b" "$K" recv 5001 > "$WORK/krecv" & PIDS+=($!)
  sleep 0.3
  read -r a b < <(busy)
  ip netns exec "$NS-a" "$K" send 10.0.0.2 5001 "$BYTES" > "$WORK/ksend"
  read -r c d < <(busy)
  wait "${PIDS[-1]}" || true
  row "TCP kernel→kernel, veth, MTU 1500 (offloads off)" "$(gbit "$WORK/ksend")" "-" "$(cores "$a" "$b" "$c" "$d")"
  ip netns exec "$NS-b" "$K" echo 7 > /dev/null & PIDS+=($!)
  sleep 0.3
  echo "1-byte request/response, kernel client → kernel echo over veth: $(ip netns exec "$NS-a" "$K" rr 10.0.0.2 7 "$RR")"
  kill "${PIDS[-1]}" 2>/dev/null; pkill -P "${PIDS[-1]}" 2>/dev/null || true
}

# The ceiling for anything that writes 1514-byte frames into one TAP queue on this machine: a
# C loop of write()s, the kernel dropping each frame at IP routing, or delivering it to a UDP
# socket that a thread drains; and the UDP case again with the writes batched 32 to an
# io_uring_enter, as Skiff's port writes (the ceiling without a system call per frame).
raw_ceiling() {
  tap_ns
  for kind in drop udp "udp uring"; do
    echo "raw TAP writes, $(ip netns exec "$NS" "$WORK/tapflood" tap0 "${FLOOD:-1000000}" $kind)"
  done
}

# The same ceiling for TCP data into a kernel socket: tcpflood plays 10.0.0.2 on a fresh TAP,
# opens a connection to `kperf recv`, writes $BYTES as 1514-byte segments (a thread reading the
# ACKs, never past the window) and closes; the kernel's TCP receive and the reader's wake-ups run
# inside its writes.
raw_ceiling_tcp() {
  tap_ns
  ip netns exec "$NS" "$K" recv 5001 > "$WORK/krecv" & PIDS+=($!)
  sleep 0.3
  echo "raw TAP writes, $(ip netns exec "$NS" "$WORK/tcpflood" tap0 "$BYTES" 5001)"
  wait "${PIDS[-1]}" || true
  grep -q "^received $BYTES bytes" "$WORK/krecv" || echo "bench-linux: kperf did not receive $BYTES bytes from tcpflood: $(tail -1 "$WORK/krecv")" >&2
}

raw_ceiling
raw_ceiling_tcp
bulk_skiff_to_kernel "" "(no offload)"
bulk_skiff_to_kernel "--no-io-uring" "(no offload, --no-io-uring)"
bulk_skiff_to_kernel "--offload" "(--offload)"
bulk_kernel_to_skiff "" "(no offload)"
bulk_kernel_to_skiff "--offload" "(--offload)"
kernel_kernel
rr_skiff "" "(default: the blocked echo thread sleeps on the TAP)"
rr_skiff "--no-sleep-on-device" "(--no-sleep-on-device: the engine thread wakes the echo thread)"
rr_skiff "--busy-read ${BUSY_READ:-200}" "(--busy-read ${BUSY_READ:-200}: the blocked echo thread polls the TAP)"
