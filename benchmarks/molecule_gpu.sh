#!/usr/bin/env bash
# One device call (2 GPUs, under 10 minutes): a continuation of the shipped molecule models' training (the
# training-length lever, one run per GPU) and, meanwhile, a sampling sweep of the shipped models; then the same sweep
# on the continued models. $1: folder with the MOSES csv.gz splits (see benchmarks/molecule_train.py).
# Writes 8 files into $OUT: two run tars, summary.json, log.txt and four samples_*.json.gz (score them on a CPU with
# `python benchmarks/molecule_quality.py score`).
set -euo pipefail
CSV=$1; MINUTES=${MINUTES:-6.0}; RATE=${RATE:-"28.7 23"}; LR=${LR:-8e-4}; N=${N:-5000}
W=/tmp/molecule-train
LOG="$OUT/log.txt"
SWEEP=(
  --setting confidence:decode.steps=55,decode.temperature=1.0
  --setting confidence:decode.steps=55,decode.temperature=1.0,decode.top_p=0.95
  --setting confidence:decode.steps=55,decode.temperature=1.0,decode.top_p=0.9
  --setting confidence:decode.steps=55,decode.temperature=1.0,decode.top_p=0.8
  --setting confidence:decode.steps=55,decode.temperature=0.9
  --setting confidence:decode.steps=55,decode.temperature=0.9,decode.top_p=0.95
  --setting klass:decode.temperature=0.8
  --setting klass:decode.temperature=1.0,decode.top_p=0.9
  --setting klass:decode.temperature=1.0,decode.top_p=0.8
  --setting klass:decode.temperature=0.9,decode.top_p=0.95
)
gen() { python3 benchmarks/molecule_quality.py generate --device cuda --n "$N" --batch-size "$N" "${SWEEP[@]}" "$@" \
  >> "$LOG" 2>&1; }
python3 benchmarks/molecule_train.py --csv-dir "$CSV" --work $W --out "$OUT" --minutes "$MINUTES" --rate $RATE \
  --run smiles:base_deep:mdsample/plugins/molecule/weights/smiles \
  --run selfies:base_deep:mdsample/plugins/molecule/weights/selfies \
  -- train.batch_size=2048 train.lr="$LR" train.warmup=200 train.eval_every=1000 train.eval_batches=10 \
  train.compile=true >> "$LOG" 2>&1 &
TRAIN=$!
(CUDA_VISIBLE_DEVICES=0 gen --representation smiles --out "$OUT/samples_smiles.json.gz") &
CUDA_VISIBLE_DEVICES=1 gen --representation selfies --out "$OUT/samples_selfies.json.gz"
wait
for r in smiles selfies; do
  i=$([ $r = smiles ] && echo 0 || echo 1)
  (CUDA_VISIBLE_DEVICES=$i gen --representation $r --model $W/final/${r}_base_deep_cont \
    --out "$OUT/samples_${r}_cont.json.gz") &
done
wait
