#!/usr/bin/env bash
# Serialised build (one Swift build at a time on this 2-core machine); prints unique errors.
cd "$(dirname "$0")/.." || exit 1
flock -o /tmp/skiff-swift.lock swift build "$@" 2>&1 | grep -E "error:|warning: (var|init|imm)|Compiling|Build complete|Build of" | grep -v "^\s*|" | awk '!seen[$0]++' | grep -v Compiling | head -60
