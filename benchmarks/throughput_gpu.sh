#!/usr/bin/env bash
# Issue 18's throughput sweep in one device call on 2 x H200, or one run after another on one H200 (about 9
# minutes; carry .reference/ for the reference loops). Every process writes its JSON into $OUT after each
# measurement and stops starting measurements it does not expect to finish in time (text_throughput.py
# --budget-s); `timeout` ends anything still running 20 s later.
#   GPU 0: LLaDA-8B at prompt 128: batches 1 and 8 in every rule x cache x capture mode, then 32 and 64 (dual cache,
#          plain loop and KLASS), the reference loops on Fast-dLLM's model, kernel profiles.
#   GPU 1: Dream-7B, the same at prompts 128 and 1024 (DREAM_S seconds), then LLaDA-8B at prompt 1024, batches 1-64,
#          with what is left.
# Expected (H200: ~4.2 TB/s copy, ~750 TFLOP/s bf16 GEMM; H100 step times scaled; imports ~15 s per process):
#   GPU 0: build 50 s (Fast-dLLM's model is initialised on the host first), batch 1 core 55 s, reference loops 80 s,
#          batch 8 core 135 s (4 uncached decodes x 21 s), b32/b64 30 s, profiles 25 s -> ~390 s; the rest goes to
#          the other rules' dual-cache steps at batches 1 and 8.
#   GPU 1: Dream build 5 s, batch 1 core 55 s, batch 8 core 135 s, sweep 125 s (b64 p1024 alone ~42 s): the budget
#          drops what does not fit; then LLaDA p1024: build 5 s, b1-b64 60 s, profile 10 s, KLASS b1-b32 35 s.
# Then the tables (tables.md) and the merged JSON. DECODE="compile=on sync_every=8" passes decode options through;
# ARGS is appended to every command (a CPU rehearsal of the schedule: DEVICE=cpu ARGS="--small --prompts 8,16
# --batches 1,2" TOTAL=150 DREAM_S=70 OUT=/tmp/x bash benchmarks/throughput_gpu.sh).
set -uo pipefail
: "${OUT:?set OUT to the output folder}"
mkdir -p "$OUT"
TOTAL=${TOTAL:-510}      # seconds from now by which every process must have ended
DREAM_S=${DREAM_S:-350}  # GPU 1's share for Dream
TAG=${TAG:-h200}
DEVICE=${DEVICE:-cuda}
read -r -a TAIL <<< "${ARGS:-}"
START=$(date +%s)
left() { echo $((TOTAL - ($(date +%s) - START))); }
EXTRA=()
if [ -n "${DECODE:-}" ]; then read -r -a opts <<< "$DECODE"; EXTRA=(--decode "${opts[@]}"); fi
sweep() {  # sweep GPU SECONDS ARGS...: one process, its budget SECONDS from its start (imports take about 15 s)
  local gpu=$1 seconds=$2; shift 2
  CUDA_VISIBLE_DEVICES=$gpu timeout $((seconds + 5)) python3 benchmarks/text_throughput.py --device "$DEVICE" --profile \
    --budget-s $((seconds - 35)) "${EXTRA[@]}" "$@" "${TAIL[@]}"
}
first() { sweep "$1" "$2" --presets llada8b --prompts 128 --references fast_dllm \
  --out "$OUT/text_throughput_sweep_llada8b_p128_$TAG.json"; }
dream() { sweep "$1" "$2" --presets dream7b --out "$OUT/text_throughput_sweep_dream7b_$TAG.json"; }
long() { sweep "$1" "$2" --presets llada8b --prompts 1024 --detail-batches '' --references '' \
  --out "$OUT/text_throughput_sweep_llada8b_p1024_$TAG.json"; }
if [ "${GPUS:-$(nvidia-smi -L 2>/dev/null | grep -c GPU)}" -ge 2 ]; then
  first 0 "$(left)" > "$OUT/gpu0.log" 2>&1 &
  (dream 1 "$DREAM_S"; long 1 "$(left)") > "$OUT/gpu1.log" 2>&1 &
  wait
else  # one GPU (or a CPU rehearsal): the same three runs one after another, half the time to the first
  (first 0 $((TOTAL / 2)); dream 0 $(($(left) * 2 / 3)); long 0 "$(left)") > "$OUT/gpu0.log" 2>&1
fi
python3 benchmarks/throughput_tables.py "$OUT"/text_throughput_sweep_*_"$TAG".json \
  --merged "$OUT/text_throughput_sweep_$TAG.json" > "$OUT/tables.md"
tail -n 3 "$OUT"/gpu*.log
