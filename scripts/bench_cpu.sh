#!/usr/bin/env bash
# CPU generation speed of base-220m (random weights) on this machine: the C reference engine
# (drdiff generate --backend cpu, all cores) next to the PyTorch reference (one forward,
# Debian's torch), in the same run. Prints one line per measurement.
#   bash scripts/bench_cpu.sh BUILD_DIR MODEL.gguf [N ...]
set -u
B=$1
M=$2
shift 2
NS=${*:-1024 4096}
STEPS=${STEPS:-2}
export PYTHONPATH=$(cd "$(dirname "$0")/.." && pwd)/models
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(date -u +%F)"
for n in $NS; do
  r=$($B/drdiff generate -m "$M" -n "$n" --steps "$STEPS" --seed 1 --backend cpu --json --no-progress |
      /usr/bin/python3 -c 'import json,sys; print("%.2f" % json.load(sys.stdin)["seconds_per_step"])')
  echo "C engine      N=$n: $r s per step (mean of $STEPS steps, includes SAS on steps that use it)"
  x=$(mktemp)
  /usr/bin/python3 -c "import numpy as np; np.random.default_rng(0).standard_normal(($n, 128)).astype('<f4').tofile('$x')"
  t0=$(date +%s.%N)
  if timeout "${TORCH_TIMEOUT:-900}" /usr/bin/python3 -m drdiff.forward -m "$M" --input "$x" --n "$n" --u 0.5 --output "$x.out"; then
    t1=$(date +%s.%N)
    echo "PyTorch       N=$n: $(echo "$t1 - $t0" | bc) s per forward (one evaluation, incl. loading the model)"
  else
    echo "PyTorch       N=$n: did not finish within ${TORCH_TIMEOUT:-900} s"
  fi
  rm -f "$x" "$x.out"
done
