#!/usr/bin/env bash
# Fuzzes every target of tests/fuzz with libFuzzer (clang, ASan + UBSan):
#
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# SECONDS_PER_TARGET defaults to 60; TARGET names like "form" or "jwt"
# (default: all of tests/fuzz/fuzz_*.c). Each target starts from its corpus
# in tests/fuzz/corpus/NAME, works on a copy (build-fuzz/corpus/NAME, kept
# between runs), and stops at the first failure: the input that caused it is
# written to build-fuzz/crash-NAME-*, the script prints how to replay it and
# exits 1. Add that input to tests/fuzz/corpus/NAME with the fix: every
# ordinary build then replays it (ctest -R fuzz_corpus). Needs clang and
# libclang-rt-14-dev (scripts/install-deps.sh fuzz).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
case "$secs" in
  ''|*[!0-9]*|0) echo "fuzz.sh: SECONDS_PER_TARGET must be a positive whole number, got '$secs'" >&2; exit 2 ;;
esac
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in tests/fuzz/fuzz_*.c; do n=${f##*/fuzz_}; targets+=("${n%.c}"); done
fi
for t in "${targets[@]}"; do
  if [ ! -f "tests/fuzz/fuzz_$t.c" ]; then echo "fuzz.sh: no target '$t' (tests/fuzz/fuzz_$t.c)" >&2; exit 2; fi
done
if ! command -v clang >/dev/null; then echo "fuzz.sh: clang not found (bash scripts/install-deps.sh fuzz)" >&2; exit 2; fi
build=build-fuzz
CC=clang cmake -S . -B "$build" -DNMC_FUZZ=ON -DNMC_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" --target $(printf 'fuzz_%s ' "${targets[@]}") >/dev/null
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
for t in "${targets[@]}"; do
  work="$build/corpus/$t"
  mkdir -p "$work"
  start=$(date +%s)
  if ! "$build/fuzz_$t" -max_total_time="$secs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$build/crash-$t-" "$work" "tests/fuzz/corpus/$t" \
      >"$build/fuzz-$t.log" 2>&1; then
    tail -40 "$build/fuzz-$t.log" >&2
    echo "fuzz.sh: $t FAILED; replay: $build/fuzz_$t $build/crash-$t-*" >&2
    exit 1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$build/fuzz-$t.log")
  cov=$(grep -o 'cov: [0-9]*' "$build/fuzz-$t.log" | tail -1)
  echo "fuzz: $t: ${runs:-?} inputs in $(( $(date +%s) - start )) s, ${cov:-cov: ?}, $(ls "$work" | wc -l) in corpus, no failure"
done
