#!/usr/bin/env bash
# The README's test command (CI runs it too): installs what is missing, builds with warnings
# as errors, and runs every test:
#   1. all tests (CPU, GPU on the best device with the validation layer on, Python parity);
#   2. the GPU tests again under each weak-device switch (fp16 off, coopmat off, 16 KiB shared
#      memory, 1 MiB binding range, lavapipe's 4-lane subgroups), so every fallback path runs;
#   3. the GPU tests (C and Python) on Debian 13 backports' lavapipe, which has cooperative matrices, with
#      Debian 13's validation layer (.deps/debian13 from scripts/fetch-debian13-tools.sh);
#   4. the CPU tests under AddressSanitizer + UBSan, built with char unsigned (as on ARM);
#   5. the CPU tests cross-built for aarch64 and run under qemu-user;
#   6. each libFuzzer target for DRDIFF_FUZZ_SECONDS (default 60) seconds.
# GPU tests may not skip here: DRDIFF_REQUIRE_DEVICE=1 turns "no device" into a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh || exit 1
export DRDIFF_REQUIRE_DEVICE=1
jobs=$(nproc)
passed=0
failed=0

# Runs ctest with the given arguments and adds its counts to the totals.
run_ctest() {
  local dir=$1
  shift
  local log
  log=$(mktemp)
  (cd "$dir" && ctest --output-on-failure -j"$jobs" "$@") 2>&1 | tee "$log"
  local line
  line=$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1)
  if [ -z "$line" ]; then
    echo "test.sh: ctest $* printed no summary" >&2
    failed=$((failed + 1))
  else
    local f t
    f=$(echo "$line" | sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/')
    t=$(echo "$line" | sed -E 's/.* failed out of ([0-9]+).*/\1/')
    passed=$((passed + t - f))
    failed=$((failed + f))
  fi
  rm -f "$log"
}

step() { echo; echo "=== $*"; }

step "build (warnings are errors)"
cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Release -DDRDIFF_WERROR=ON >/dev/null || exit 1
cmake --build build-test -j"$jobs" 2>&1 | grep -Ev '^\[ *[0-9]+%\]' ; [ "${PIPESTATUS[0]}" -eq 0 ] || exit 1

step "all tests"
run_ctest build-test

# LP_NATIVE_VECTOR_WIDTH=128: lavapipe on 128-bit vectors, so subgroups of 4 lanes instead of 8
# (as on ARM's lavapipe and some mobile GPUs); no effect on other drivers
for sw in DRDIFF_DISABLE_F16=1 DRDIFF_DISABLE_COOPMAT=1 DRDIFF_MAX_SHARED_MEMORY=16384 DRDIFF_MAX_BUFFER_RANGE=1048576 \
  LP_NATIVE_VECTOR_WIDTH=128; do
  step "GPU tests with $sw"
  export "${sw?}"
  run_ctest build-test -L gpu
  unset "${sw%%=*}"
done

# the Python GPU tests start the CLI through the same wrapper (tests/engine_cmd.py)
step "GPU tests on lavapipe with cooperative matrices (Mesa 26 from Debian 13 backports)"
# DRDIFF_CPU_COOPMAT=1: a CPU device runs the scalar kernels by default (runtime/vk_caps.c); here
# it must run the cooperative-matrix ones, the only place CI can
DRDIFF_CPU_COOPMAT=1 DRDIFF_TEST_RUNNER=$PWD/.deps/debian13/bin/run run_ctest build-test -L gpu

step "CPU tests under AddressSanitizer + UBSan, char unsigned as on ARM"
# -funsigned-char: char is unsigned on ARM (Android, the mobile GPUs), so byte handling is
# checked both ways (the first build has x86's signed char)
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DDRDIFF_SANITIZE=ON -DDRDIFF_WERROR=ON -DCMAKE_C_FLAGS=-funsigned-char >/dev/null || exit 1
cmake --build build-asan -j"$jobs" 2>&1 | grep -Ev '^\[ *[0-9]+%\]' ; [ "${PIPESTATUS[0]}" -eq 0 ] || exit 1
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 run_ctest build-asan -L cpu

step "CPU tests built for aarch64 (ARM: Android, phones), run under qemu-user"
# -fno-tree-vectorize: Debian 12's aarch64 gcc 12.2 stops with an internal compiler error
# (vect_transform_reduction) on five test files; the library builds either way
cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-aarch64-linux-gnu.cmake \
  -DCMAKE_BUILD_TYPE=Release -DDRDIFF_WERROR=ON -DCMAKE_C_FLAGS=-fno-tree-vectorize >/dev/null || exit 1
cmake --build build-aarch64 -j"$jobs" 2>&1 | grep -Ev '^\[ *[0-9]+%\]' ; [ "${PIPESTATUS[0]}" -eq 0 ] || exit 1
DRDIFF_TEST_RUNNER=$PWD/scripts/run-aarch64.sh run_ctest build-aarch64 -L cpu

if [ -f tests/fuzz/CMakeLists.txt ]; then
  step "fuzzers (${DRDIFF_FUZZ_SECONDS:-60} s each)"
  CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DDRDIFF_FUZZ=ON >/dev/null || exit 1
  targets=$(for f in tests/fuzz/fuzz_*.c; do basename "$f" .c; done)
  # shellcheck disable=SC2086
  cmake --build build-fuzz -j"$jobs" --target $targets 2>&1 | grep -Ev '^\[ *[0-9]+%\]' ; [ "${PIPESTATUS[0]}" -eq 0 ] || exit 1
  if bash tests/fuzz/run-fuzzers.sh build-fuzz "${DRDIFF_FUZZ_SECONDS:-60}"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
  fi
fi

echo
echo "total: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
