#!/usr/bin/env bash
# Runs the GPU-machine measurements in one go (see docs/performance.md): on a lent machine
# that has an NVIDIA driver but no Vulkan loader, with the loader and glvnd libraries carried
# in .gl/ (scripts/gpu-loaders.sh) and binaries built here in build-gpu/ (scripts/gpu-build.sh).
# The tests want the validation layer: Debian 12's (1.3.239) predates cooperative matrices, so
# Debian 13's is carried in build-gpu/vklayer/ (copied from .deps/debian13, gzipped, with a
# manifest whose library_path is ./libVkLayer_khronos_validation.so; it needs glibc 2.38,
# which the lent machines' Ubuntu 24.04 has), with Debian 13's loader: Debian 12's asks the
# driver for vkGetPhysicalDeviceVideoEncodeQualityLevelPropertiesKHR through
# vkGetDeviceProcAddr, which that layer reports on NVIDIA. Logs go to $OUT; a short table is printed last.
#   bash scripts/gpu-machine.sh [tests] [kernels] [gemm] [sas] [engine] [ab] [same] [bench] [gen] [compare] [des] [variants] [stats] [shipped] [longest] [isa]
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
if [ -d $B/vklayer ]; then
  gunzip -f $B/vklayer/*.gz 2>/dev/null
  export VK_LAYER_PATH=$B/vklayer LD_LIBRARY_PATH=$B/vklayer${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi
PY=/opt/torch/.venv/bin/python3
[ -x $PY ] || PY=python3
what=${*:-tests bench gen}
summary=()
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > "$OUT/gpu.txt" 2>&1
# The host's and GPU's state before and after the run: a machine on which our short steps left
# the GPU idle ~20 ms each (docs/performance.md, thirteenth session) recorded nothing to explain it.
host_state() {
  { echo "== $1 $(date -u +%FT%TZ)"; nproc; cat /proc/loadavg; ps -eo pcpu,comm --sort=-pcpu | head -6
    nvidia-smi --query-gpu=clocks.sm,clocks.max.sm,power.draw,pstate,utilization.gpu --format=csv
    nvidia-smi --query-compute-apps=pid,process_name,used_memory --format=csv; } >> "$OUT/host.txt" 2>&1
}
host_state start
$B/drdiff info > "$OUT/info.txt" 2>&1
$B/drdiff info --json > "$OUT/info.json" 2>&1
summary+=("device: $(head -1 "$OUT/gpu.txt")")

if [[ $what == *tests* ]]; then
  for sw in ${TEST_SWITCHES:-NONE=1 DRDIFF_DISABLE_F16=1 DRDIFF_DISABLE_COOPMAT=1 DRDIFF_DISABLE_COOPMAT2=1 DRDIFF_MAX_SHARED_MEMORY=16384 DRDIFF_MAX_BUFFER_RANGE=1048576}; do
    log="$OUT/tests.log"
    echo "=== ctest -L gpu with $sw" >> "$log"
    (cd $B && env "$sw" DRDIFF_REQUIRE_DEVICE=1 timeout "${GPU_TEST_TIMEOUT:-330}" ctest -L gpu -E '^test_gpu_parity$' --output-on-failure) >> "$log" 2>&1
    summary+=("gpu tests ($sw): $(grep -E 'tests passed' "$log" | tail -1)")
  done
  (cd $B && timeout 100 ctest -L cpu) > "$OUT/tests-cpu.log" 2>&1
  summary+=("cpu tests: $(grep -E 'tests passed' "$OUT/tests-cpu.log" | tail -1)")
  env PYTHONPATH=/work/main/models:/work/main/tests DRDIFF_BIN=$B/drdiff DRDIFF_TOOLS=$B/tests DRDIFF_REQUIRE_DEVICE=1 \
    timeout 100 $PY tests/test_gpu_parity.py > "$OUT/gpu-parity.log" 2>&1
  summary+=("gpu parity (python): $(tail -1 "$OUT/gpu-parity.log")")
fi

if [[ $what == *kernels* ]]; then
  # the kernel tests alone, cooperative-matrix kernels on (the device's default)
  for t in ${KERNEL_TESTS:-test_kernel_gemm test_kernel_des test_kernel_attention test_kernel_sas}; do
    (cd $B && DRDIFF_REQUIRE_DEVICE=1 timeout "${KERNEL_TEST_TIMEOUT:-150}" ./tests/$t) > "$OUT/$t.log" 2>&1
    summary+=("$t: exit $? ($(grep -E 'ok|fail|FAIL|worst' "$OUT/$t.log" | tail -3 | tr '\n' ' '))")
  done
fi

if [[ $what == *gemm* ]]; then
  # issue 5's GEMM target: the model's shapes on our kernels (cooperative matrices, and the
  # scalar kernel with DRDIFF_DISABLE_COOPMAT=1), a tile sweep, and torch.matmul on this GPU.
  # No bias (DRDIFF_GEMM_NO_BIAS=1), as the engine's layer products (q, k, v, o, DES) have none
  shapes=${GEMM_SHAPES:-16384x1024x1024 32768x2304x1024 32768x1024x2304 4096x4096x4096 1024x1024x1024}
  for sh in $shapes; do
    IFS=x read -r M N K <<< "$sh"
    # coopmat with f32 A (converted in the kernel), with f16 A (what the engine feeds it), scalar
    for sw in NONE=1 DRDIFF_GEMM_A16=1 DRDIFF_DISABLE_COOPMAT=1; do
      env "$sw" DRDIFF_GEMM_NO_BIAS=1 DRDIFF_PROFILE=1 timeout 60 $B/tests/tool_bench_gemm "$M" "$N" "$K" f16 20 >> "$OUT/gemm.jsonl" 2>>"$OUT/gemm.log"
    done
  done
  for tile in ${GEMM_TILES-cm,256,128,32,4,2 cm,128,256,32,2,4 cm,128,128,32,2,2 cm,128,128,64,2,4 cm,64,64,32,2,2}; do
    for sh in 16384x1024x1024 4096x4096x4096; do
      IFS=x read -r M N K <<< "$sh"
      DRDIFF_GEMM_NO_BIAS=1 DRDIFF_GEMM_A16=1 DRDIFF_GEMM_TILE=$tile DRDIFF_PROFILE=1 timeout 60 $B/tests/tool_bench_gemm "$M" "$N" "$K" f16 20 \
        >> "$OUT/gemm.jsonl" 2>>"$OUT/gemm.log"
    done
  done
  PYTHONPATH=/work/main/models timeout 120 $PY -m drdiff.bench_matmul $shapes > "$OUT/torch-matmul.jsonl" 2>>"$OUT/gemm.log"
  summary+=("$($PY - "$OUT/gemm.jsonl" "$OUT/torch-matmul.jsonl" <<'PYEOF'
import json, sys
ours = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
torch = {(r["M"], r["N"], r["K"]): r["tflops"] for r in (json.loads(l) for l in open(sys.argv[2]) if l.startswith("{"))}
print("gemm (GPU-timestamp TFLOP/s): shape kernel tile A ours torch ratio")
for r in ours:
    t = torch.get((r["M"], r["N"], r["K"]))
    f = r.get("gpu_gflops", r["gflops"]) / 1e3
    print(f'  {r["M"]}x{r["N"]}x{r["K"]} {r["kernel"]} {r["tile"]} {r.get("a", "f32")} {f:.1f} {t} {f / t if t else 0:.2f} err {r["check_rel_err"]:.2g}')
PYEOF
)")
fi

if [[ $what == *isa* ]]; then
  # the machine code of every pipeline a step of base-220m builds (ISA_N tokens), through the
  # pipeline cache (scripts/nv_sass.py; nvdisasm from the machine's CUDA toolkit)
  nvd=$(ls /usr/local/cuda*/bin/nvdisasm 2>/dev/null | head -n 1)
  rm -rf /tmp/drdiff-pc && mkdir -p /tmp/drdiff-pc
  DRDIFF_CACHE_DIR=/tmp/drdiff-pc timeout 100 $B/drdiff bench --config base-220m -n "${ISA_N:-16384}" --steps 2 \
    --no-profile > /dev/null 2>>"$OUT/isa.log"
  $PY scripts/nv_sass.py /tmp/drdiff-pc/*.bin $B/zstd "$nvd" "$OUT/isa" > "$OUT/isa.txt" 2>>"$OUT/isa.log"
  summary+=("isa: $(grep -c registers "$OUT/isa.txt") pipelines (listings in isa/), those with HMMA:")
  while read -r l; do summary+=("  $l"); done < <(grep HMMA "$OUT/isa.txt")
fi

if [[ $what == *attn* ]]; then
  # HSA attention at base-220m's shape (16 heads of 64), automatic kernel and the scalar one;
  # SAS / rounding timings of test_kernel_sas's bench mode (both kernels)
  # ATTN_KERNELS: DRDIFF_ATTN_KERNEL values (auto = unset), e.g. "auto coopmat:4,1,32"
  for n in ${ATTN_NS:-16384 65536}; do
    for k in ${ATTN_KERNELS:-auto scalar}; do
      [ "$k" = auto ] && k=
      r=$(DRDIFF_ATTN_KERNEL=$k timeout 60 $B/tests/tool_bench_attention $n 16 64 2>>"$OUT/attn.log" | tail -1)
      echo "$r" >> "$OUT/attn.log"
      summary+=("attention N=$n ${k:-auto}: $(echo "$r" | grep -oE '"kernel":"[a-z]*"|"bc":[0-9]*|"ms":[0-9.]*|"gflops":[0-9.]*' | tr '\n' ' ')")
    done
  done
  if [ -z "${NO_SAS_BENCH:-}" ]; then
    DRDIFF_TEST_BENCH=1 timeout 150 $B/tests/test_kernel_sas > "$OUT/sas-bench.log" 2>&1
    summary+=("sas bench: $(grep -iE 'bench|ms' "$OUT/sas-bench.log" | tail -6 | tr '\n' ' ')")
  fi
fi

if [[ $what == *sas* ]]; then
  # SAS absorption / rounding alone (test_kernel_sas's bench mode: each kernel, several
  # vocabulary splits) for each binary of SAS_BINS (e.g. a previous revision's test copied
  # into build-gpu/tests), SAS_NS rows, SAS_VTS cooperative-matrix tiles (auto = the op's)
  for vt in ${SAS_VTS:-auto}; do
    for bin in ${SAS_BINS:-test_kernel_sas}; do
      log="$OUT/sas-$bin-$vt.log"
      env $([ "$vt" = auto ] || echo DRDIFF_SAS_BENCH_VT=$vt) DRDIFF_SAS_BENCH_N=${SAS_NS:-16384,4096} \
        DRDIFF_TEST_BENCH=1 timeout 200 $B/tests/$bin 2>&1 | grep -E '^bench' > "$log"
      summary+=("sas $bin vt $vt: $(grep -E 'sas_absorb coopmat' "$log" | sed -E 's/.*N=([0-9]+).*splits (auto )?([0-9]+).*: ([0-9.]+) ms per run.*/N=\1 s\3 \4ms/' | tr '\n' ' ')")
    done
  done
fi

if [[ $what == *ab* ]] && [ -x $B/drdiff-prev ]; then
  # before / after in one run: the drdiff of another revision (PREV= of gpu-build.sh) against
  # this one, alternating (prev, new, prev, new) so that drift hits both alike; AB_BINS names
  # more binaries of build-gpu/ to alternate with (e.g. an intermediate revision's)
  ns=${AB_NS:-1024,4096,16384}
  bins=${AB_BINS:-drdiff-prev drdiff}
  for round in 1 2; do
    for bin in $bins; do
      timeout 150 $B/$bin bench --config base-220m -n "$ns" --steps "${BENCH_STEPS:-5}" --json --no-profile \
        > "$OUT/ab-$bin-$round.json" 2>>"$OUT/ab.log"
    done
  done
  summary+=("$($PY - "$OUT" "$(cat $B/drdiff-prev.rev 2>/dev/null)" $bins <<'PYEOF'
import json, sys, os
def load(name):
    try: return {r["N"]: r for r in json.load(open(os.path.join(sys.argv[1], name)))["runs"]}
    except Exception: return {}
bins = sys.argv[3:]
runs = {(b, k): load(f"ab-{b}-{k}.json") for b in bins for k in (1, 2)}
print(f"ms per step of base-220m, plain / SAS (rounds 1, 2; drdiff-prev = {sys.argv[2] or 'prev'}) and host CPU ms/step:")
for n in sorted(runs[(bins[-1], 1)]):
    cell = lambda b: " ".join(f'{runs[(b, k)].get(n, {}).get("step_ms_plain", 0):.2f}/{runs[(b, k)].get(n, {}).get("step_ms_sas", 0):.2f}' for k in (1, 2))
    cpu = lambda b: runs[(b, 1)].get(n, {}).get("host_cpu_ms_per_step", 0)
    print(f"  N={n}: " + "  ".join(f"{b} {cell(b)} (cpu {cpu(b):.2f})" for b in bins))
PYEOF
)")
fi

old=${SAME_OLD:-drdiff-prev} # SAME_OLD: another binary of build-gpu/ to compare against
if [[ $what == *same* ]] && [ -x $B/$old ]; then
  # a change that must not move a single token: the shipped model and a random base-220m
  # (f16) generate with the old binary (SAME_OLD, default drdiff-prev), drdiff and the old one again (is it even
  # deterministic?), and their tokens are compared (SAME_NS: the base-220m lengths; 16384
  # takes the GEMMs' fused-RoPE path on an H200)
  M=/tmp/base-220m-f16.gguf
  [ -f $M ] || PYTHONPATH=/work/main/models $PY -m drdiff.random_model --config base-220m --seed 1 --dtype f16 -o $M > "$OUT/same.log" 2>&1
  shipped=$(ls models/*.gguf 2>/dev/null | head -n 1)
  for spec in ${shipped:+$shipped:64} $(for n in ${SAME_NS:-1024 4096 16384}; do echo "$M:$n"; done); do
    m=${spec%%:*}; n=${spec##*:}
    for run in $old:1 drdiff:1 $old:2; do
      bin=${run%%:*}
      timeout 100 $B/$bin generate -m "$m" -n "$n" --seed 7 --json --no-progress 2>>"$OUT/same.log" |
        $PY -c 'import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])["tokens"])' \
        > "$OUT/same-$bin-${run##*:}-$n.txt" 2>>"$OUT/same.log"
    done
    verdict() { [ -s "$OUT/same-$1-$n.txt" ] && cmp -s "$OUT/same-$1-$n.txt" "$OUT/same-$2-$n.txt" && echo yes || echo NO; }
    summary+=("same tokens $(basename "$m") N=$n: old ($old) vs new $(verdict $old-1 drdiff-1), old twice $(verdict $old-1 $old-2)")
  done
fi

if [[ $what == *engine* ]]; then
  # whole denoising steps of base-220m, cooperative matrices on and off (no PyTorch)
  ns=${BENCH_NS:-1024,4096,16384,65536}
  timeout 200 $B/drdiff bench --config base-220m -n "$ns" --steps "${BENCH_STEPS:-5}" --json > "$OUT/engine-cm.json" 2>"$OUT/engine.log"
  DRDIFF_DISABLE_COOPMAT=1 timeout 200 $B/drdiff bench --config base-220m -n "$ns" --steps "${BENCH_STEPS:-5}" --json --no-profile \
    > "$OUT/engine-scalar.json" 2>>"$OUT/engine.log"
  summary+=("$($PY - "$OUT/engine-cm.json" "$OUT/engine-scalar.json" <<'PYEOF'
import json, sys
def load(p):
    try: return {r["N"]: r for r in json.load(open(p))["runs"]}
    except Exception as e: return {}
cm, sc = load(sys.argv[1]), load(sys.argv[2])
print("engine base-220m: N coopmat-ms scalar-ms coopmat-TFLOP/s host-ms/step host-ms-once top ops")
for n, r in sorted(cm.items()):
    ops = ", ".join(f'{o["name"]} {o["share"]*100:.0f}%' for o in r.get("ops", [])[:5])
    print(f'  {n} {r.get("step_ms_median", 0):.1f} {sc.get(n, {}).get("step_ms_median", 0):.1f} {r.get("tflops", 0):.1f} {r.get("host_cpu_ms_per_step", 0):.2f} {r.get("host_cpu_ms_once", 0):.2f} {ops}')
PYEOF
)")
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
  # issue 5's side-by-side: drdiff bench (cooperative matrices), PyTorch eager and compiled,
  # and the engine again on the scalar kernels (DRDIFF_DISABLE_COOPMAT=1). 5 steps by default:
  # on a freshly started machine the first processes' first timed steps at 16K ran up to 40 %
  # slow (sixteenth session), and with 3 steps those are two of the three.
  SCALAR=${SCALAR:-1} TORCH_TIME_LIMIT=${TORCH_TIME_LIMIT:-150} TORCH_GRACE=60 DRDIFF_BIN=$B/drdiff PY=$PY \
    bash scripts/bench_compare.sh "$OUT/compare" "${BENCH_NS:-1024,4096,16384,65536}" "${BENCH_STEPS:-5}" \
    > "$OUT/compare.log" 2>&1
  summary+=("compare: see compare/table.txt")
fi

if [[ $what == *des* ]]; then
  # the stand-alone DES FFN at the sizes of base-220m's layers, against the engine's profile
  for T in 4096 16384; do
    for tile in "" ${DES_TILES:-}; do
      r=$(DRDIFF_DES_TILE=$tile DRDIFF_PROFILE=1 timeout 60 $B/tests/tool_bench_des $T 1024 2304 8 2 0.9 f16 10 2>>"$OUT/des.log")
      echo "T=$T: $r" >> "$OUT/des.log"
      summary+=("des T=$T ${tile:-default}: $(echo "$r" | grep -oE '"tile": "[^"]*"|"gpu_ms": \{[^}]*\}|"gpu_gflops": [0-9.]*|"check_rel_err": [0-9.e-]*' | tr '\n' ' ')")
    done
    r=$(DRDIFF_DISABLE_COOPMAT=1 DRDIFF_PROFILE=1 timeout 60 $B/tests/tool_bench_des $T 1024 2304 8 2 0.9 f16 10 2>>"$OUT/des.log")
    echo "T=$T scalar: $r" >> "$OUT/des.log"
    summary+=("des T=$T scalar: $(echo "$r" | grep -oE '"gpu_gflops": [0-9.]*')")
  done
fi

if [[ $what == *variants* ]]; then
  # kernel variants chosen through the environment (VARIANTS: space-separated, each a
  # comma-separated list of VAR=value), two rounds alternating: the GEMM tool at two shapes,
  # the DES FFN at T 16384 and whole steps at 4K and 16K
  for round in 1 2; do
    for v in ${VARIANTS:-NONE=1}; do
      IFS=, read -r -a envs <<< "$v"
      for sh in ${VAR_GEMM:-16384x1024x1024 4096x4096x4096}; do
        IFS=x read -r M N K <<< "$sh"
        r=$(env "${envs[@]}" DRDIFF_GEMM_A16=1 DRDIFF_PROFILE=1 timeout 60 $B/tests/tool_bench_gemm "$M" "$N" "$K" f16 20 2>>"$OUT/variants.log")
        echo "$v $sh: $r" >> "$OUT/variants.log"
        summary+=("r$round $v gemm $sh: $(echo "$r" | grep -oE '"tile": "[^"]*"|"gpu_gflops": [0-9.]*|"check_rel_err": [0-9.e-]*' | tr '\n' ' ')")
      done
      r=$(env "${envs[@]}" DRDIFF_PROFILE=1 timeout 60 $B/tests/tool_bench_des 16384 1024 2304 8 2 0.9 f16 10 2>>"$OUT/variants.log")
      echo "$v des: $r" >> "$OUT/variants.log"
      summary+=("r$round $v des 16384: $(echo "$r" | grep -oE '"gpu_ms": \{[^}]*\}|"check_rel_err": [0-9.e-]*' | tr '\n' ' ')")
      r=$(env "${envs[@]}" timeout 100 $B/drdiff bench --config base-220m -n "${VAR_NS:-4096,16384}" --steps 5 --json --no-profile 2>>"$OUT/variants.log")
      echo "$v bench: $r" >> "$OUT/variants.log"
      summary+=("r$round $v steps: $(echo "$r" | grep -oE '"step_ms_median": [0-9.]*' | tr '\n' ' ')")
    done
  done
fi

if [[ $what == *stats* ]]; then
  # the driver's statistics (registers, spills) of the kernels a 1K and a 16K step use, the
  # GEMM tiles and the attention key tiles (DRDIFF_PIPELINE_STATS; one line per pipeline)
  export DRDIFF_PIPELINE_STATS=1 DRDIFF_LOG=info
  timeout 100 $B/drdiff bench --config base-220m -n 1024,16384 --steps 2 --no-profile > /dev/null 2>> "$OUT/stats.log"
  for tile in ${GEMM_TILES-cm,128,256,32,2,4 cm,128,128,32,2,2 cm,128,128,64,2,4}; do
    DRDIFF_GEMM_A16=1 DRDIFF_GEMM_TILE=$tile timeout 60 $B/tests/tool_bench_gemm 4096 4096 4096 f16 2 > /dev/null 2>> "$OUT/stats.log"
  done
  for k in ${ATTN_KERNELS:-coopmat:4,1,16 coopmat:4,1,32 coopmat:4,1,64 coopmat:2,2,16}; do
    [ "$k" = auto ] && k=
    DRDIFF_ATTN_KERNEL=$k timeout 60 $B/tests/tool_bench_attention 16384 16 64 > /dev/null 2>> "$OUT/stats.log"
  done
  unset DRDIFF_PIPELINE_STATS DRDIFF_LOG
  summary+=("pipeline stats (distinct):")
  while IFS= read -r l; do summary+=("  $l"); done < <(grep -o 'pipeline stats: .*' "$OUT/stats.log" | sort -u | head -60)
fi

if [[ $what == *shipped* ]]; then
  # the shipped model (found relative to the binary) on the GPU, and its parity test
  r=$(timeout 60 $B/drdiff generate -p "The history of the city" --no-progress 2>>"$OUT/shipped.log")
  echo "$r" >> "$OUT/shipped.log"
  summary+=("shipped model: $r")
  (cd $B && env DRDIFF_REQUIRE_DEVICE=1 timeout 120 ctest -R "${SHIPPED_TESTS:-shipped|bench}" --output-on-failure) >> "$OUT/shipped.log" 2>&1
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
host_state end
printf '%s\n' "${summary[@]}" | tee "$OUT/summary.txt"
# the device tool returns at most 8 files: everything in one archive, the summary beside it
(cd "$OUT" && tar czf /tmp/drdiff-logs.tgz . && find . -mindepth 1 ! -name summary.txt -exec rm -rf {} + &&
  mv /tmp/drdiff-logs.tgz .)
