#!/usr/bin/env bash
# Runs the GPU-machine measurements in one go (see docs/performance.md): on a lent machine
# that has an NVIDIA driver but no Vulkan loader, with the loader, lavapipe and validation
# layer carried in .gl/ (../shared/device/fetch-vulkan-loaders.sh with WITH_VALIDATION=1) and
# binaries built here in build-gpu/. Logs go to $OUT; a short table is printed last.
#   bash scripts/gpu-machine.sh [tests] [bench] [gen]
set -u
OUT=${OUT:-/tmp/drdiff-out}
mkdir -p "$OUT"
for f in .gl/*.deb; do dpkg -x "$f" / ; done
ldconfig
# the NVIDIA ICD (libGLX_nvidia) needs glvnd's libraries, carried in .gl/ too
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
# CTest files hold the absolute paths of the machine that configured them
if [ "$(pwd -P)" != /work/main ]; then mkdir -p /work && rm -rf /work/main && ln -s "$(pwd -P)" /work/main; fi
B=/work/main/build-gpu
PY=/opt/torch/.venv/bin/python3
[ -x $PY ] || PY=python3
what=${*:-tests bench gen}
summary=()
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > "$OUT/gpu.txt" 2>&1
$B/drdiff info > "$OUT/info.txt" 2>&1
$B/drdiff info --json > "$OUT/info.json" 2>&1
summary+=("device: $(head -1 "$OUT/gpu.txt")")

if [[ $what == *tests* ]]; then
  for sw in NONE=1 DRDIFF_DISABLE_F16=1 DRDIFF_DISABLE_COOPMAT=1 DRDIFF_MAX_SHARED_MEMORY=16384 DRDIFF_MAX_BUFFER_RANGE=1048576; do
    log="$OUT/tests.log"
    echo "=== ctest -L gpu with $sw" >> "$log"
    (cd $B && env "$sw" DRDIFF_REQUIRE_DEVICE=1 timeout 100 ctest -L gpu -E '^test_gpu_parity$' --output-on-failure) >> "$log" 2>&1
    summary+=("gpu tests ($sw): $(grep -E 'tests passed' "$log" | tail -1)")
  done
  (cd $B && timeout 100 ctest -L cpu) > "$OUT/tests-cpu.log" 2>&1
  summary+=("cpu tests: $(grep -E 'tests passed' "$OUT/tests-cpu.log" | tail -1)")
  env PYTHONPATH=/work/main/models:/work/main/tests DRDIFF_BIN=$B/drdiff DRDIFF_TOOLS=$B/tests DRDIFF_REQUIRE_DEVICE=1 \
    timeout 100 $PY tests/test_gpu_parity.py > "$OUT/gpu-parity.log" 2>&1
  summary+=("gpu parity (python): $(tail -1 "$OUT/gpu-parity.log")")
fi

if [[ $what == *bench* ]]; then
  for t in f16 f32; do
    r=$($B/tests/tool_bench_gemm 4096 4096 4096 $t 20 2>>"$OUT/bench.log")
    echo "$r" >> "$OUT/bench.log"
    summary+=("gemm 4096^3 $t: $r")
  done
fi

if [[ $what == *gen* ]]; then
  M=/tmp/base-220m-f16.gguf
  [ -f $M ] || PYTHONPATH=/work/main/models $PY -m drdiff.random_model --config base-220m --seed 1 --dtype f16 -o $M > "$OUT/gen.log" 2>&1
  for spec in 4096:20 16384:20 65536:3 131072:2; do
    n=${spec%%:*}; s=${spec##*:}
    r=$(timeout 100 $B/drdiff generate -m $M -n "$n" --steps "$s" --seed 7 --json --no-progress 2>>"$OUT/gen.log" |
        $PY scripts/gen_summary.py 2>>"$OUT/gen.log")
    echo "N=$n steps=$s: $r" >> "$OUT/gen.log"
    summary+=("base-220m N=$n ($s steps): $r")
  done
  DRDIFF_PROFILE=1 timeout 120 $B/drdiff generate -m $M -n 16384 --steps 2 --json --no-progress > /dev/null 2> "$OUT/profile-16384.txt"
fi
printf '%s\n' "${summary[@]}" | tee "$OUT/summary.txt"
