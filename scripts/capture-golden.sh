#!/usr/bin/env bash
# Captures golden packet traces from real Linux traffic for SkiffWireTests.
#
# Runs as root. Everything happens inside two private network namespaces
# (skiffgold-a, skiffgold-b) joined by a veth pair created directly inside
# them; the root namespace's interfaces are never touched and nothing is
# sent to any address other than 10.99.0.1 / 10.99.0.2. Every process
# started is killed by PID and both namespaces are deleted on exit.
#
# Usage: scripts/capture-golden.sh [OUTDIR]   (default Tests/SkiffWireTests/Golden)
#
# Output: one OUTDIR/<scenario>.hex per scenario: for each frame, a comment
# line with tcpdump's one-line summary, then the frame as one line of hex
# (no FCS). Text, not .pcap, so the traces diff well and are not caught by
# the repository's *.pcap ignore rule.
#
# NOTE: the tests check specific values (sequence numbers, timestamps, IP
# identifications) seen in the committed traces; re-running this script
# produces new values and the expectations in GoldenTests.swift must be
# updated to match.
set -euo pipefail

[[ $(id -u) -eq 0 ]] || { echo "capture-golden.sh: must run as root" >&2; exit 1; }

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$ROOT/Tests/SkiffWireTests/Golden}
mkdir -p "$OUT"

for tool in tcpdump ethtool ping python3 ip nft timeout; do
    if ! command -v "$tool" >/dev/null; then
        apt-get update -qq
        apt-get install -y -qq tcpdump ethtool iputils-ping iproute2 nftables >/dev/null
        break
    fi
done

NA=skiffgold-a
NB=skiffgold-b
IFA=skg0          # in $NA, 10.99.0.1, 02:00:00:99:00:01
IFB=skg1          # in $NB, 10.99.0.2, 02:00:00:99:00:02
IPA=10.99.0.1
IPB=10.99.0.2
TMP=$(mktemp -d)
PCAPS=$TMP/pcap
mkdir -p "$PCAPS"
PIDS=()

cleanup() {
    set +e
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    done
    ip netns del "$NA" 2>/dev/null
    ip netns del "$NB" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
trap "exit 1" INT TERM

A() { ip netns exec "$NA" "$@"; }
B() { ip netns exec "$NB" "$@"; }

# Start from nothing: a leftover namespace from an aborted run is ours.
ip netns del "$NA" 2>/dev/null || true
ip netns del "$NB" 2>/dev/null || true
ip netns add "$NA"
ip netns add "$NB"
ip link add "$IFA" netns "$NA" address 02:00:00:99:00:01 type veth \
    peer name "$IFB" netns "$NB" address 02:00:00:99:00:02
for ns in "$NA" "$NB"; do
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
    ip netns exec "$ns" ip link set lo up
done
# Real checksums and real segment sizes on the wire: no offloads.
A ethtool -K "$IFA" tx off tso off gso off gro off txvlan off rxvlan off >/dev/null 2>&1 || true
B ethtool -K "$IFB" tx off tso off gso off gro off txvlan off rxvlan off >/dev/null 2>&1 || true
A ip addr add "$IPA/24" dev "$IFA"
B ip addr add "$IPB/24" dev "$IFB"
A ip link set "$IFA" up
B ip link set "$IFB" up
sleep 1

# capture NAME FILTER: starts tcpdump in $NA on $IFA writing $PCAPS/NAME.pcap.
CAP_PID=
capture() {
    local name=$1 filter=$2
    # Not through A(): a backgrounded function is a subshell, and $! must
    # be tcpdump's own PID (ip netns exec execs it).
    ip netns exec "$NA" tcpdump -i "$IFA" --immediate-mode -U -n -s 0 -Z root -w "$PCAPS/$name.pcap" "$filter" 2>"$TMP/$name.err" &
    CAP_PID=$!
    PIDS+=("$CAP_PID")
    for _ in $(seq 50); do
        if grep -q "listening on" "$TMP/$name.err" 2>/dev/null; then
            sleep 0.5
            return 0
        fi
        sleep 0.1
    done
    echo "tcpdump did not start for $name" >&2
    cat "$TMP/$name.err" >&2
    return 1
}
stop_capture() {
    sleep 1
    kill -TERM "$CAP_PID" 2>/dev/null || true
    wait "$CAP_PID" 2>/dev/null || true
    to_hex "$1"
}

# to_hex NAME: $PCAPS/NAME.pcap -> $OUT/NAME.hex (summary comment + hex per frame).
to_hex() {
    tcpdump -r "$PCAPS/$1.pcap" -n -e 2>/dev/null | cut -d' ' -f2- >"$TMP/$1.txt"
    python3 - "$PCAPS/$1.pcap" "$TMP/$1.txt" "$OUT/$1.hex" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
summaries = open(sys.argv[2]).read().splitlines()
assert struct.unpack_from("<I", data, 0)[0] == 0xA1B2C3D4, "expected a little-endian microsecond pcap"
frames, off = [], 24
while off + 16 <= len(data):
    caplen, origlen = struct.unpack_from("<II", data, off + 8)
    assert caplen == origlen, "frame truncated by snaplen"
    frames.append(data[off + 16: off + 16 + caplen])
    off += 16 + caplen
assert len(frames) == len(summaries), (len(frames), len(summaries))
with open(sys.argv[3], "w") as out:
    out.write("# Captured from Linux by scripts/capture-golden.sh; one frame per hex line.\n")
    for summary, frame in zip(summaries, frames):
        out.write("# " + summary + "\n" + frame.hex() + "\n")
print(f"captured {len(frames)} frames -> {sys.argv[3]}")
PY
}

cat >"$TMP/tcp_server.py" <<'PY'
import socket, sys
host, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((host, port)); s.listen(1); s.settimeout(20)
c, _ = s.accept(); c.settimeout(20)
if mode == "echo":
    data = c.recv(4096)
    c.sendall(b"hello linux\n")
else:
    while c.recv(65536):
        pass
c.close(); s.close()
PY
cat >"$TMP/tcp_client.py" <<'PY'
import socket, sys
host, port, sport, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", sport)); s.settimeout(20)
s.connect((host, port))
if mode == "echo":
    s.sendall(b"hello skiff\n")
    s.recv(4096)
else:
    s.sendall(bytes(range(256)) * int(sys.argv[5]))
    s.shutdown(socket.SHUT_WR)
    s.recv(1)
s.close()
PY
cat >"$TMP/udp.py" <<'PY'
import socket, sys
mode = sys.argv[1]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(10)
if mode == "server":
    s.bind(("10.99.0.2", 7777))
    data, peer = s.recvfrom(2048)
    s.sendto(b"pong", peer)
elif mode == "client":
    s.bind(("0.0.0.0", 40000))
    s.sendto(b"skiff golden udp", ("10.99.0.2", 7777))
    s.recvfrom(2048)
else:  # to a closed port: provokes ICMP port unreachable
    s.bind(("0.0.0.0", 40001))
    s.sendto(b"anyone there?", ("10.99.0.2", 9))
PY

# tcp_exchange PORT SPORT MODE [REPEAT]: server in B, client in A.
tcp_exchange() {
    ip netns exec "$NB" timeout 25 python3 "$TMP/tcp_server.py" "$IPB" "$1" "$3" &
    local spid=$!
    PIDS+=("$spid")
    sleep 0.5
    A timeout 25 python3 "$TMP/tcp_client.py" "$IPB" "$1" "$2" "$3" "${4:-0}"
    wait "$spid"
}

# 1. ARP request/reply (fresh neighbour table) followed by one echo.
capture arp-ping "arp or icmp"
A ping -c 1 -W 2 "$IPB" >/dev/null
stop_capture arp-ping

# 2. A 4000-byte echo: fragmented at MTU 1500 in both directions.
capture ping-fragmented "icmp or (ip[6:2] & 0x3fff != 0)"
A ping -c 1 -W 2 -s 4000 "$IPB" >/dev/null
stop_capture ping-fragmented

# 3. Echo with the Record Route option: IPv4 options on the wire.
capture ping-record-route "icmp"
A ping -c 1 -W 2 -R "$IPB" >/dev/null || true
stop_capture ping-record-route

# 4. UDP datagram and reply.
capture udp "udp"
ip netns exec "$NB" timeout 12 python3 "$TMP/udp.py" server &
PIDS+=("$!")
sleep 0.5
A timeout 12 python3 "$TMP/udp.py" client
stop_capture udp

# 5. UDP to a closed port: ICMP port unreachable quoting the datagram.
capture port-unreachable "udp or icmp"
A timeout 5 python3 "$TMP/udp.py" closed
stop_capture port-unreachable

# 6. TCP handshake with Linux's options, data with timestamps, FIN close.
capture tcp-handshake "tcp port 8080"
tcp_exchange 8080 45000 echo
stop_capture tcp-handshake

# 7. Handshake with timestamps off: Linux's other SYN option layout.
A sysctl -qw net.ipv4.tcp_timestamps=0
B sysctl -qw net.ipv4.tcp_timestamps=0
capture tcp-no-timestamps "tcp port 8082 and tcp[tcpflags] & tcp-syn != 0"
tcp_exchange 8082 45002 echo
stop_capture tcp-no-timestamps
A sysctl -qw net.ipv4.tcp_timestamps=1
B sysctl -qw net.ipv4.tcp_timestamps=1

# 8. SACK: bulk data from A to B; B drops every 7th arriving segment
# (nftables, deterministic) so Linux in B answers with SACK blocks. Keep
# only B's ACKs.
B nft -f - <<'NFT'
table inet skiffgold {
    chain in {
        type filter hook prerouting priority -300; policy accept;
        tcp dport 8081 tcp flags & (syn | fin) == 0 numgen inc mod 7 == 3 drop
    }
}
NFT
capture tcp-sack "tcp port 8081 and src host $IPB"
tcp_exchange 8081 45001 bulk 300
stop_capture tcp-sack
B nft delete table inet skiffgold

# 9. 802.1Q. With 8021q in the kernel: move the addresses onto VLAN 5
# interfaces and ARP + ping over them. Without it (ip link refuses the
# type): Linux's own echo request from arp-ping.pcap is re-sent from A's
# packet socket with a VID 5 tag inserted after the MAC addresses, so the
# trace still holds real Linux IPv4/ICMP bytes inside a tag on the wire.
if A ip link add link "$IFA" name "$IFA.5" type vlan id 5 2>/dev/null; then
    B ip link add link "$IFB" name "$IFB.5" type vlan id 5
    A ip addr del "$IPA/24" dev "$IFA"
    B ip addr del "$IPB/24" dev "$IFB"
    A ip addr add "$IPA/24" dev "$IFA.5"
    B ip addr add "$IPB/24" dev "$IFB.5"
    A ip link set "$IFA.5" up
    B ip link set "$IFB.5" up
    sleep 0.5
    capture vlan "vlan"
    A ping -c 1 -W 2 "$IPB" >/dev/null
    stop_capture vlan
else
    echo "kernel has no 802.1Q devices; tagging Linux's echo request by hand"
    capture vlan "vlan"
    A timeout 5 python3 - "$PCAPS/arp-ping.pcap" "$IFA" <<'PY'
import socket, struct, sys
data = open(sys.argv[1], "rb").read()
off, frame = 24, None
while off + 16 <= len(data):
    caplen = struct.unpack_from("<I", data, off + 8)[0]
    f = data[off + 16: off + 16 + caplen]
    off += 16 + caplen
    if f[12:14] == b"\x08\x00" and f[23] == 1 and f[34] == 8:  # IPv4, ICMP, echo request
        frame = f
        break
tagged = frame[:12] + b"\x81\x00" + struct.pack("!H", 5) + frame[12:]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[2], 0))
s.send(tagged)
PY
    stop_capture vlan
    sed -i '1a # NOTE: this kernel has no 802.1Q devices (CONFIG_VLAN_8021Q unset): the tag below was inserted\n# by capture-golden.sh into Linux'"'"'s own echo request (arp-ping.hex) and sent from a packet socket.' "$OUT/vlan.hex"
fi

ls -l "$OUT"
du -ch "$OUT"/*.hex | tail -1
