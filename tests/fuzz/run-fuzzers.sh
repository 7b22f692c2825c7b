#!/bin/sh
# Runs every fuzzer built in BUILD_DIR (configured with -DDRDIFF_FUZZ=ON) for SECONDS each,
# starting from its seed corpus tests/fuzz/corpus_<x>/. The corpus is copied to a temporary
# directory first, so the inputs the fuzzer adds do not grow the repository. Crash inputs
# are kept in BUILD_DIR/fuzz-artifacts/<fuzzer>/. Exits non-zero if any fuzzer fails.
#
#   tests/fuzz/run-fuzzers.sh build-fuzz 60
set -u

if [ $# -ne 2 ]; then
  echo "usage: $0 BUILD_DIR SECONDS" >&2
  exit 2
fi
build=$1
seconds=$2
here=$(cd "$(dirname "$0")" && pwd)

fuzzers=$(find "$build" -type f -name 'fuzz_*' -perm -u+x ! -name '*.*' 2>/dev/null | sort)
if [ -z "$fuzzers" ]; then
  echo "run-fuzzers: no fuzz_* executables under $build (configure with -DDRDIFF_FUZZ=ON and build)" >&2
  exit 2
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/drdiff-fuzz.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM

failed=""
for exe in $fuzzers; do
  name=$(basename "$exe")
  what=${name#fuzz_}
  corpus="$tmp/$name"
  artifacts="$build/fuzz-artifacts/$name"
  mkdir -p "$corpus" "$artifacts"
  if [ -d "$here/corpus_$what" ]; then
    cp "$here/corpus_$what"/* "$corpus"/ 2>/dev/null
  fi
  echo "=== $name: ${seconds}s, $(ls "$corpus" | wc -l) seeds"
  # -timeout: one input taking longer is a bug (a hang); -rss_limit_mb: so is a huge allocation
  "$exe" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "$corpus" > "$tmp/$name.log" 2>&1
  rc=$?
  tail -n 12 "$tmp/$name.log"
  if [ $rc -ne 0 ]; then
    echo "=== $name FAILED (exit $rc); inputs in $artifacts/" >&2
    grep -m 20 -E "ERROR|SUMMARY|runtime error|==[0-9]+==" "$tmp/$name.log" >&2
    failed="$failed $name"
  else
    echo "=== $name ok: corpus grew to $(ls "$corpus" | wc -l) inputs"
  fi
done

if [ -n "$failed" ]; then
  echo "run-fuzzers: failed:$failed" >&2
  exit 1
fi
echo "run-fuzzers: all fuzzers ran ${seconds}s without a crash"
