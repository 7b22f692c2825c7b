#!/usr/bin/env bash
# The Vulkan engine against PyTorch on the same GPU, back to back, base-220m (random weights):
#   bash scripts/bench_compare.sh OUTDIR [N_LIST] [STEPS]
# N_LIST defaults to 1024,4096,16384,65536 and STEPS to 20. Writes to OUTDIR:
#   drdiff.json         $DRDIFF_BIN bench --config base-220m -n N_LIST --steps STEPS --json
#   torch.json          python3 -m drdiff.bench_torch, modes eager and compile, fp16
#   drdiff-scalar.json  the engine again with DRDIFF_DISABLE_COOPMAT=1 (no tensor cores)
#   *.log               their stderr;  table.txt  what is printed at the end
# then prints the table of scripts/bench_table.py (ms per step, ours/eager, ours/compiled,
# TFLOP/s, memory). A step that fails leaves its JSON missing and the table prints "-".
# Run it where the engine finds its Vulkan driver (on the lent GPU machine: after the loader
# setup at the top of scripts/gpu-machine.sh).
#
# Environment:
#   DRDIFF_BIN        the engine's CLI (default build-gpu/drdiff)
#   PY                python with CUDA torch (default /opt/torch/.venv/bin/python3, else python3)
#   TORCH_TIME_LIMIT  seconds after which bench_torch starts no new (N, mode) (default 300);
#                     the process is killed TORCH_GRACE (default 120) seconds later
#   TORCH_TIMED_STEPS timed steps per (N, mode) (default 5, spread over the STEPS schedule)
#   TORCH_MODES       default eager,compile
#   TORCH_NS          the N list of the PyTorch runs, in the order run (default N_LIST)
#   DRDIFF_TIMEOUT    seconds for each engine run (default 240)
#   DRDIFF_BENCH_ARGS more arguments for the engine run (e.g. --no-profile: drdiff bench runs
#                     a third, profiled generation per N for the per-op breakdown otherwise)
#   SCALAR=0          skip the scalar engine run; SCALAR_ARGS its extra arguments
#                     (default --no-profile)
# The whole thing should fit the GPU machine's 10-minute command limit with the defaults
# only when the engine is fast; lower STEPS or N_LIST, or run the pieces in separate calls.
set -u
if [ $# -lt 1 ]; then
  echo "usage: $0 OUTDIR [N_LIST] [STEPS]" >&2
  exit 2
fi
OUT=$1
NS=${2:-1024,4096,16384,65536}
STEPS=${3:-20}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DRDIFF_BIN=${DRDIFF_BIN:-$ROOT/build-gpu/drdiff}
if [ -z "${PY:-}" ]; then
  PY=/opt/torch/.venv/bin/python3
  [ -x "$PY" ] || PY=python3
fi
TORCH_TIME_LIMIT=${TORCH_TIME_LIMIT:-300}
TORCH_GRACE=${TORCH_GRACE:-120}
TORCH_TIMED_STEPS=${TORCH_TIMED_STEPS:-5}
TORCH_MODES=${TORCH_MODES:-eager,compile}
DRDIFF_TIMEOUT=${DRDIFF_TIMEOUT:-240}
mkdir -p "$OUT"

engine() {  # engine NAME EXTRA_ARGS [ENV=VALUE ...]: one drdiff bench run into OUT/NAME.json
  local name=$1 extra=$2
  shift 2
  if [ ! -x "$DRDIFF_BIN" ]; then
    echo "$name: $DRDIFF_BIN not found or not executable" | tee "$OUT/$name.log" >&2
    return
  fi
  local t0=$SECONDS
  # a failed or killed run leaves whatever it printed; bench_table reads what it can
  env "$@" timeout "$DRDIFF_TIMEOUT" "$DRDIFF_BIN" bench --config base-220m -n "$NS" \
    --steps "$STEPS" --json $extra > "$OUT/$name.json" 2> "$OUT/$name.log"
  echo "$name: exit $? after $((SECONDS - t0)) s (log: $OUT/$name.log)" >&2
}

engine drdiff "${DRDIFF_BENCH_ARGS:-}"

t0=$SECONDS
PYTHONPATH="$ROOT/models${PYTHONPATH:+:$PYTHONPATH}" \
  timeout $((TORCH_TIME_LIMIT + TORCH_GRACE)) "$PY" -m drdiff.bench_torch --config base-220m \
  -n "${TORCH_NS:-$NS}" --steps "$STEPS" --timed-steps "$TORCH_TIMED_STEPS" --modes "$TORCH_MODES" \
  --device cuda --dtype fp16 --time-limit "$TORCH_TIME_LIMIT" --json "$OUT/torch.json" 2> "$OUT/torch.log"
echo "torch: exit $? after $((SECONDS - t0)) s (log: $OUT/torch.log)" >&2

if [ "${SCALAR:-1}" != 0 ]; then
  engine drdiff-scalar "${SCALAR_ARGS---no-profile}" DRDIFF_DISABLE_COOPMAT=1
fi

"$PY" "$ROOT/scripts/bench_table.py" "$OUT" | tee "$OUT/table.txt"
