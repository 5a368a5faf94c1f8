#!/usr/bin/env bash
# Runs the whole test suite: installs packages, builds with -Werror and
# ASan+UBSan, starts a throwaway PostgreSQL (ctest fixture) and runs ctest.
# Set NMC_SKIP_INSTALL=1 to skip the apt-get step on a prepared machine.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${NMC_SKIP_INSTALL:-0}" != 1 ]; then bash scripts/install-deps.sh all; fi
bash scripts/check-banned.sh
bash scripts/check-tooling.sh
build=${NMC_TEST_BUILD_DIR:-build-test}
cmake -S . -B "$build" -DNMC_SANITIZE=ON -DNMC_WERROR=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build "$build" -j"$(nproc)"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ctest --test-dir "$build" --output-on-failure -j"$(nproc)" --timeout 600
