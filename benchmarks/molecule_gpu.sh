#!/usr/bin/env bash
# One device call (2 GPUs, under 10 minutes): the quality sweep of the shipped molecule models, plus a continuation
# of their training (the training-length lever) and the default settings' sweep on the continued models.
# $1: folder with the MOSES csv.gz splits (see benchmarks/molecule_train.py); writes 8 files into $OUT.
set -euo pipefail
CSV=$1; MINUTES=${MINUTES:-5.8}; RATE=${RATE:-"28.7 23"}
W=/tmp/molecule-train
LOG="$OUT/log.txt"
gen() { python3 benchmarks/molecule_quality.py generate --device cuda "$@" >> "$LOG" 2>&1; }
python3 benchmarks/molecule_train.py --csv-dir "$CSV" --work $W --out "$OUT" --minutes "$MINUTES" --rate $RATE \
  --run smiles:base_deep:mdsample/plugins/molecule/weights/smiles \
  --run selfies:base_deep:mdsample/plugins/molecule/weights/selfies \
  -- train.batch_size=2048 train.lr=7e-4 train.warmup=200 train.eval_every=1000 train.eval_batches=10 \
  train.compile=true >> "$LOG" 2>&1 &
TRAIN=$!
CUDA_VISIBLE_DEVICES=0 gen --representation smiles --out "$OUT/samples_smiles.json.gz" &
SMILES=$!
CUDA_VISIBLE_DEVICES=1 gen --representation selfies --out "$OUT/samples_selfies.json.gz"
wait $SMILES
wait $TRAIN
for r in smiles selfies; do
  CUDA_VISIBLE_DEVICES=0 gen --representation $r --model $W/final/${r}_base_deep_cont --rules confidence,klass \
    --out "$OUT/samples_${r}_cont.json.gz"
done
