#!/usr/bin/env bash
# Runs packetdrill's TCP scripts (IPv4) against libSkiffPacketdrill.so.
#
#   scripts/packetdrill-suite.sh PACKETDRILL_BINARY LIBSKIFFPACKETDRILL_SO [TESTS_DIR] [PATTERN]
#
# PACKETDRILL_BINARY is an already built packetdrill (this script neither fetches nor builds
# it); TESTS_DIR defaults to gtests/net/tcp next to it. PATTERN (a grep -E expression) limits
# the scripts run. Each script runs from its own folder, inside a network namespace made for
# each script (the scripts' set-up lines call sysctl and tc on tun0, so the namespace has a tun0),
# with a time limit of its own. Needs root (ip netns). Prints one line per script and a count;
# the output of each failing script goes to $LOG_DIR (default /tmp/skiff-packetdrill-logs).
#
# packetdrill runs with a small LD_PRELOAD shim, scripts/packetdrill-preload.c, built here with
# the system C compiler (cc): packetdrill's code events (`%{ ... }%`) read TCP_INFO, TCP_CC_INFO
# and SO_MEMINFO with the process's own getsockopt(2) on the socket's live descriptor rather
# than through the library, and that descriptor is only the library's placeholder; the shim
# hands those three calls to the library (skiff_pd_live_getsockopt) and everything else to libc.
set -u

bin=${1:?usage: $0 PACKETDRILL_BINARY LIBSKIFFPACKETDRILL_SO [TESTS_DIR] [PATTERN]}
so=${2:?usage: $0 PACKETDRILL_BINARY LIBSKIFFPACKETDRILL_SO [TESTS_DIR] [PATTERN]}
tests=${3:-$(dirname "$(readlink -f "$bin")")/../tcp}
pattern=${4:-.}
per_script_seconds=${PER_SCRIPT_SECONDS:-60}
log_dir=${LOG_DIR:-/tmp/skiff-packetdrill-logs}

bin=$(readlink -f "$bin"); so=$(readlink -f "$so"); tests=$(readlink -f "$tests")
[ -x "$bin" ] || { echo "no packetdrill at $bin" >&2; exit 2; }
[ -f "$so" ] || { echo "no shared object at $so" >&2; exit 2; }
[ -d "$tests" ] || { echo "no scripts at $tests" >&2; exit 2; }

work=$(mktemp -d /tmp/skiff-pd-suite.XXXXXX) || exit 2
preload=$work/libskiff-pd-preload.so
cc -O2 -shared -fPIC -o "$preload" "$(dirname "$(readlink -f "$0")")/packetdrill-preload.c" -ldl -lpthread \
    || { echo "cannot build the getsockopt shim" >&2; rm -rf "$work"; exit 2; }

ns=skiffpd$$
trap 'ip netns del "$ns" 2>/dev/null; rm -rf "$work"' EXIT
# A namespace of its own for each script, as a fresh kernel for each: the scripts' sysctl
# lines (some never restored, or not restored when a script fails) must not reach the next one.
fresh_namespace() {
    ip netns del "$ns" 2>/dev/null
    ip netns add "$ns" || exit 2
    ip netns exec "$ns" ip link set lo up
    ip netns exec "$ns" ip tuntap add dev tun0 mode tun
    ip netns exec "$ns" ip link set tun0 up
}

mkdir -p "$log_dir"
pass=0; fail=0; total=0
while IFS= read -r script; do
    rel=${script#"$tests"/}
    echo "$rel" | grep -Eq -- "$pattern" || continue
    total=$((total + 1))
    fresh_namespace
    # The issue's command line gives every script 192.168.0.1 → 192.0.2.1. With
    # SCRIPT_ADDRESSES=1 a script that names its own addresses (`--local_ip=` / `--remote_ip=`
    # lines: Fast Open scripts whose expected cookies are computed over those addresses) runs
    # with them instead (the command line would otherwise override them).
    local_ip=192.168.0.1; remote_ip=192.0.2.1
    if [ "${SCRIPT_ADDRESSES:-0}" = 1 ]; then
        l=$(sed -n 's/^--local_ip=\([0-9.]*\).*/\1/p' "$script" | head -1); local_ip=${l:-$local_ip}
        r=$(sed -n 's/^--remote_ip=\([0-9.]*\).*/\1/p' "$script" | head -1); remote_ip=${r:-$remote_ip}
    fi
    out=$(cd "$(dirname "$script")" && timeout -k 5 "$per_script_seconds" ip netns exec "$ns" env LD_PRELOAD="$preload" "$bin" \
        --so_filename="$so" \
        --so_flags=local_ip=$local_ip,netmask=255.255.0.0,gateway=192.168.0.1 \
        --ip_version=ipv4 --local_ip=$local_ip --gateway_ip=192.168.0.1 \
        --netmask_ip=255.255.0.0 --remote_ip=$remote_ip \
        -D TFO_COOKIE=3021b9d889017eeb -D CODE=host_unreachable \
        -D CMSG_LEVEL_IP=SOL_IP -D CMSG_TYPE_RECVERR=IP_RECVERR \
        "$(basename "$script")" 2>&1)
    rc=$?
    if [ $rc -eq 0 ]; then
        pass=$((pass + 1)); echo "PASS $rel"
    else
        fail=$((fail + 1))
        log="$log_dir/$(echo "$rel" | tr / _).log"
        printf '%s\n' "$out" > "$log"
        reason=$(printf '%s\n' "$out" | grep -v '^sysctl: ' | grep -v 'Exclusivity flag' | tail -1 | cut -c1-160)
        [ $rc -eq 124 ] && reason="timed out after ${per_script_seconds}s"
        echo "FAIL $rel: $reason"
    fi
done < <(find "$tests" -name '*.pkt' ! -name '*v6*' | sort)
echo "passed $pass of $total (failed $fail)"
