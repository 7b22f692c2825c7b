#!/usr/bin/env bash
# Trains (or keeps training) the shipped DrDiff model, then converts and evaluates it.
#
#   bash models/train_on_gpu.sh MINUTES OUTDIR [RESUME_DIR]
#
# MINUTES   wall clock of the training part of this run (see Timing below).
# OUTDIR    receives everything (at most 7 files): ckpt-<step>-<k>.pt (the checkpoint,
#           3 shards of <= 15 MiB for `small`), losses.jsonl, train.log,
#           drdiff-small-f16.gguf, eval.json.
# RESUME_DIR  optional: a folder with an earlier run's OUTDIR files (checkpoint shards,
#           losses.jsonl, train.log). When OUTDIR holds no checkpoint, they are copied into
#           OUTDIR first and training continues from there; with neither, training starts
#           afresh.
#
# Environment: CONFIG (default small), TOTAL_MINUTES (the planned training time of all
# runs together, which fixes the LR schedule's length on the first run; default MINUTES),
# DATA (default models/.cache/data, written by `python3 -m drdiff.data`), PYTHON (default
# python3), EVAL_ARGS (arguments for drdiff.evaluate; default --sas-sweep, whose choice
# of SAS defaults is then written into the GGUF), TRAIN_ARGS (extra for drdiff.train,
# e.g. "--set lr=0.001" on a fresh run), EVAL=0 (convert but skip the evaluation, which
# takes ~1.5 minutes on an H100: for the intermediate runs of a series).
#
# Timing under a 10-minute command limit: the run adds ~30 s of start-up and conversion,
# and ~1.5 min of evaluation, to MINUTES. So: MINUTES <= 8.5 with EVAL=0, <= 7 with it.
set -euo pipefail
if [ $# -lt 2 ]; then
  sed -n '2,27p' "$0"
  exit 2
fi
MINUTES=$1
OUTDIR=$2
RESUME_DIR=${3:-}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CONFIG=${CONFIG:-small}
TOTAL_MINUTES=${TOTAL_MINUTES:-$MINUTES}
DATA=${DATA:-$ROOT/models/.cache/data}
PYTHON=${PYTHON:-python3}
export PYTHONPATH=$ROOT/models${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1

for f in tokenizer.json train.npy validation.npy words.txt; do
  if [ ! -f "$DATA/$f" ]; then
    echo "missing $DATA/$f: run 'PYTHONPATH=models python3 -m drdiff.data' first (needs network)" >&2
    exit 1
  fi
done
mkdir -p "$OUTDIR"
if [ -n "$RESUME_DIR" ] && ! ls "$OUTDIR"/ckpt-*-0.pt >/dev/null 2>&1; then
  if ls "$RESUME_DIR"/ckpt-*-0.pt >/dev/null 2>&1; then
    echo "resuming from $RESUME_DIR"
    cp "$RESUME_DIR"/ckpt-*.pt "$OUTDIR"/
    for f in losses.jsonl train.log; do
      if [ -f "$RESUME_DIR/$f" ]; then cp "$RESUME_DIR/$f" "$OUTDIR/$f"; fi
    done
    chmod u+w "$OUTDIR"/*            # fetched files can be read-only
  else
    echo "no checkpoint in $RESUME_DIR: starting afresh"
  fi
fi
LOG=$OUTDIR/train.log
GGUF=$OUTDIR/drdiff-$CONFIG-f16.gguf
{
  echo "=== $(date -u +%FT%TZ) train_on_gpu.sh $MINUTES min (total $TOTAL_MINUTES) config $CONFIG"
  "$PYTHON" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")'
} 2>&1 | tee -a "$LOG"
# shellcheck disable=SC2086
"$PYTHON" -m drdiff.train --config "$CONFIG" --data "$DATA" --out "$OUTDIR" \
  --minutes "$MINUTES" --total-minutes "$TOTAL_MINUTES" --resume ${TRAIN_ARGS:-} 2>&1 | tee -a "$LOG"
"$PYTHON" -m drdiff.convert --ckpt "$OUTDIR" -o "$GGUF" --name "drdiff-$CONFIG" 2>&1 | tee -a "$LOG"
if [ "${EVAL:-1}" = 0 ]; then
  echo "=== done (EVAL=0, no evaluation): $(ls "$OUTDIR" | tr '\n' ' ')" | tee -a "$LOG"
  exit 0
fi
# shellcheck disable=SC2086
"$PYTHON" -m drdiff.evaluate -m "$GGUF" --data "$DATA" -o "$OUTDIR/eval.json" \
  ${EVAL_ARGS---sas-sweep} 2>&1 | tee -a "$LOG"
# the SAS defaults the sweep chose go into the shipped file
SAS=$("$PYTHON" -c 'import json, sys
c = json.load(open(sys.argv[1])).get("sas_chosen")
print(" ".join(str(c[k]) for k in ("sas_gamma", "sas_temperature", "sas_start")) if c else "")' \
  "$OUTDIR/eval.json")
if [ -n "$SAS" ]; then
  set -- $SAS
  "$PYTHON" -m drdiff.convert --ckpt "$OUTDIR" -o "$GGUF" --name "drdiff-$CONFIG" \
    --sas-gamma "$1" --sas-temperature "$2" --sas-start "$3" 2>&1 | tee -a "$LOG"
fi
echo "=== done: $(ls "$OUTDIR" | tr '\n' ' ')" | tee -a "$LOG"
