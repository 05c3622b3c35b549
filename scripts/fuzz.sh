#!/usr/bin/env bash
# Fuzzes the SkiffWire parsers with libFuzzer + AddressSanitizer.
#
# Usage: scripts/fuzz.sh [SECONDS]   (default 60)
#
# Builds Sources/SkiffWire/*.swift together with Fuzz/WireFuzz.swift into
# .build-fuzz/wirefuzz, seeds .build-fuzz/corpus with every golden frame
# from Tests/SkiffWireTests/Golden/*.hex, and runs for SECONDS. Exits
# non-zero if the fuzzer finds a crash (the input is left in
# .build-fuzz/crash-*). Serialised with other Swift builds through
# /tmp/skiff-swift.lock.
set -euo pipefail

SECONDS_TO_RUN=${1:-60}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
OUT=.build-fuzz
mkdir -p "$OUT/corpus"

SWIFTC=${SWIFTC:-$(command -v swiftc || echo /opt/swift/usr/bin/swiftc)}
# Under CI nothing else builds; elsewhere take the shared build lock (CI=true skips it).
LOCK=(flock -o /tmp/skiff-swift.lock)
[ -n "${CI:-}" ] && LOCK=()
"${LOCK[@]}" "$SWIFTC" -sanitize=fuzzer,address -parse-as-library -O \
    -module-name SkiffWireFuzz \
    Sources/SkiffWire/*.swift Fuzz/WireFuzz.swift -o "$OUT/wirefuzz"

# Seed corpus: one file per golden frame (hex lines; '#' lines are comments).
for f in Tests/SkiffWireTests/Golden/*.hex; do
    base=$(basename "$f" .hex)
    n=0
    grep -v '^#' "$f" | while read -r line; do
        [ -n "$line" ] || continue
        n=$((n + 1))
        printf '%s' "$line" | xxd -r -p >"$OUT/corpus/golden-$base-$n" 2>/dev/null \
            || python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.argv[1]))' "$line" >"$OUT/corpus/golden-$base-$n"
    done
done

echo "fuzzing for ${SECONDS_TO_RUN}s with $(ls "$OUT/corpus" | wc -l) corpus inputs"
"$OUT/wirefuzz" -max_total_time="$SECONDS_TO_RUN" -max_len=4096 -timeout=10 \
    -artifact_prefix="$OUT/" -print_final_stats=1 "$OUT/corpus"
