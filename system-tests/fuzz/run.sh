#!/usr/bin/env bash
# Coverage-guided fuzzing of the body decoders with libFuzzer (AddressSanitizer on).
#
#   system-tests/fuzz/run.sh [SECONDS]   default 30; CI runs a short bounded run
#
# Crashes are written to system-tests/fuzz/crashes/ and replayed by every later run before fuzzing, so
# each one stays a regression test once committed.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
seconds=${1:-30}
build="$root/.build-fuzz"
mkdir -p "$build" "$build/corpus" "$root/system-tests/fuzz/crashes"

swiftc -O -sanitize=fuzzer,address -parse-as-library -module-name IncrementCore \
    "$root"/Sources/IncrementCore/*.swift "$root/system-tests/fuzz/DecoderFuzzer.swift" -o "$build/decoder-fuzzer"

cp -n "$root"/system-tests/fuzz/seeds/* "$build/corpus/" 2>/dev/null || true
crashes=("$root"/system-tests/fuzz/crashes/*)
if [[ -e "${crashes[0]}" ]]; then
    echo "replaying ${#crashes[@]} saved crash input(s)"
    "$build/decoder-fuzzer" "${crashes[@]}"
fi
"$build/decoder-fuzzer" "$build/corpus" -max_total_time="$seconds" -max_len=4096 \
    -artifact_prefix="$root/system-tests/fuzz/crashes/" -print_final_stats=1 2>&1 | tail -n 15
