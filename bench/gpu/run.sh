#!/usr/bin/env bash
# GPU benchmark: dddit (LibTorch-CUDA build, scripts/build-gpu.sh) against the project's PyTorch
# script (bench/torch_dit.py, eager and torch.compile), same card, same call.
#
#   bench/gpu/run.sh BINARY OUTDIR [PART]
#
# PART: `s2` (matmul peak, DiT-S/2, router speed-ups), `b2` (DiT-B/2) or `all` (default).
# Writes one JSON per measurement into OUTDIR; bench/gpu/report.py turns them into
# results/gpu/bench.md. Needs PyTorch 2.11 (CUDA) in $PYTHON (default: the device image's).
set -uo pipefail
bin=$1
out=$2
part=${3:-all}
source "$(dirname "$0")/env.sh"
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
log() { echo "[$(date +%H:%M:%S)] $*"; }
run() { # name, command...
  local name=$1; shift
  log "$name"
  if ! "$@" > "$out/$name.log" 2>&1; then log "FAILED: $name"; tail -5 "$out/$name.log"; fi
  grep -E "^(train|sample|forward)" "$out/$name.log" | sed 's/^/    /'
}
if [ "$part" != b2 ]; then
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv > "$out/gpu.csv"
  cat "$out/gpu.csv"
  $py -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' | tee "$out/torch.txt"
  run peak $py "$here/../torch_dit.py" --device cuda --matmul-peak --json "$out/peak.json"
  cat "$out/peak.log"
fi
models=()
case $part in s2) models=(DiT-S/2) ;; b2) models=(DiT-B/2) ;; *) models=(DiT-S/2 DiT-B/2) ;; esac
common="--image-size 32 --channels 4 --classes 1000 --train-batch 256 --sample-batch 256 --sample-steps 10 --warmup 3 --reps 10 --sample-reps 2"
for m in "${models[@]}"; do
  tag=${m//[\/-]/}
  for p in f32 tf32 bf16; do
    run "dddit-$tag-$p" "$bin" bench --model "$m" --device tch-cuda:0 --precision $p $common --json "$out/dddit-$tag-$p.json"
  done
  for p in f32 tf32 bf16-autocast bf16-pure; do
    run "torch-eager-$tag-$p" $py "$here/../torch_dit.py" --model "$m" --device cuda --precision $p $common --json "$out/torch-eager-$tag-$p.json"
  done
  for p in tf32 bf16-autocast; do
    run "torch-compile-$tag-$p" $py "$here/../torch_dit.py" --model "$m" --device cuda --precision $p --compile $common --sample-batch 0 --json "$out/torch-compile-$tag-$p.json"
  done
done
if [ "$part" != b2 ]; then
  for p in f32 bf16; do
    run "dddit-routers-S2-$p" "$bin" bench --model DiT-S/2 --device tch-cuda:0 --precision $p --image-size 32 --channels 4 --classes 1000 \
      --train-batch 0 --sample-batch 0 --forward-batches 1,64 --forward-routers topk,dynamic-width,token-skip,depth-budget --warmup 5 --reps 30 --json "$out/dddit-routers-S2-$p.json"
  done
fi
log done
# $OUT brings back at most 8 files: everything in one archive.
tar -C "$out" -czf "$out.tgz" . && ls -la "$out.tgz"
