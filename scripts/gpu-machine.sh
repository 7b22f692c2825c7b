#!/usr/bin/env bash
# Runs the GPU-machine measurements in one go (see docs/performance.md): on a lent machine
# that has an NVIDIA driver but no Vulkan loader, with the loader, lavapipe and validation
# layer carried in .gl/ (../shared/device/fetch-vulkan-loaders.sh with WITH_VALIDATION=1) and
# binaries built here in build-gpu/. Logs go to $OUT; a short table is printed last.
#   bash scripts/gpu-machine.sh [tests] [bench] [gen] [compare] [des] [shipped] [longest]
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
if [[ $what == *compare* ]]; then
  # issue 5's side-by-side: drdiff bench, then PyTorch eager and compiled (no scalar rerun:
  # the engine has no cooperative-matrix path yet, so DRDIFF_DISABLE_COOPMAT=1 changes nothing)
  SCALAR=0 TORCH_TIME_LIMIT=${TORCH_TIME_LIMIT:-150} TORCH_GRACE=60 DRDIFF_BIN=$B/drdiff PY=$PY \
    bash scripts/bench_compare.sh "$OUT/compare" "${BENCH_NS:-1024,4096,16384,65536}" "${BENCH_STEPS:-3}" \
    > "$OUT/compare.log" 2>&1
  summary+=("compare: see compare/table.txt")
fi

if [[ $what == *des* ]]; then
  # the stand-alone DES FFN at the sizes of base-220m's layers, against the engine's profile
  for T in 4096 16384; do
    r=$(DRDIFF_PROFILE=1 timeout 60 $B/tests/tool_bench_des $T 1024 2304 8 2 0.9 f16 10 2>>"$OUT/des.log")
    echo "T=$T: $r" >> "$OUT/des.log"
    summary+=("des T=$T: $r")
  done
fi

if [[ $what == *shipped* ]]; then
  # the shipped model (found relative to the binary) on the GPU, and its parity test
  r=$(timeout 60 $B/drdiff generate -p "The history of the city" --no-progress 2>>"$OUT/shipped.log")
  echo "$r" >> "$OUT/shipped.log"
  summary+=("shipped model: $r")
  (cd $B && env DRDIFF_REQUIRE_DEVICE=1 timeout 120 ctest -R 'shipped|bench' --output-on-failure) >> "$OUT/shipped.log" 2>&1
  summary+=("shipped/bench tests: $(grep -E 'tests passed' "$OUT/shipped.log" | tail -1)")
fi

if [[ $what == *longest* ]] && [ "$SECONDS" -lt "${LONGEST_IF_BEFORE:-330}" ]; then
  # issue 4: a long N in one step, and the planner's answer for a length that cannot fit
  for n in ${LONGEST_N:-524288}; do
    r=$(timeout 150 $B/drdiff bench --config base-220m -n "$n" --steps 1 --no-profile --json 2>>"$OUT/longest.log" |
        $PY -c 'import json,sys; r=json.load(sys.stdin)["runs"][0]; print({k: r.get(k) for k in ("N","step_ms_median","device_bytes","setup_s","error")})')
    summary+=("longest N=$n: $r")
  done
  r=$(timeout 60 $B/drdiff bench --config base-220m -n 8000000 --steps 1 --no-profile 2>&1 | grep -i "memory" | head -2)
  summary+=("N=8M: $r")
fi
printf '%s\n' "${summary[@]}" | tee "$OUT/summary.txt"
