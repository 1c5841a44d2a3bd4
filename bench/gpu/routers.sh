#!/usr/bin/env bash
# Router speed-ups on one GPU (issue 19): every router of `dddit_routers::fixtures` (fixed routing
# decisions), inference forward, DiT-S/2 and DiT-B/2 on 32×32×4, f32 and bf16-mixed, batch 1
# and 64, with the operator calls of one forward (LibTorch's RecordFunction, top-level ATen
# ops); then batch-1 DDIM sampling eager and from CUDA graphs. One device call (~5 min on an
# H100).
#
#   [MODELS="S/2 B/2"] [PRECISIONS="f32 bf16-mixed"] [FORWARD=1] [GRAPH=1] bench/gpu/routers.sh BINARY OUTDIR
#   python3 bench/gpu/routers_report.py OUTDIR results/gpu/routers     # .md and .json
set -uo pipefail
bin=${1:?usage: bench/gpu/routers.sh BINARY OUTDIR}
out=${2:?usage: bench/gpu/routers.sh BINARY OUTDIR}
source "$(dirname "$0")/env.sh"
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > "$out/gpu.txt"
routers=topk,expert-choice,depth-budget,dynamic-width,token-skip,text-budget,content-aware,step-cache
dims="--image-size 32 --channels 4 --classes 1000"
[ "${FORWARD:-1}" = 1 ] || MODELS=" "   # FORWARD=0: the graph study alone
for model in ${MODELS:-S/2 B/2}; do
  for p in ${PRECISIONS:-f32 bf16-mixed}; do
    name="routers-${model/\//}-$p"
    echo "[$(date +%H:%M:%S)] $name"
    # shellcheck disable=SC2086
    timeout 240 "$bin" bench --model "DiT-$model" --device tch-cuda:0 --precision $p $dims \
      --train-batch 0 --sample-batch 0 --forward-batches 1,64 --forward-routers $routers \
      --warmup 5 --reps 30 --json "$out/$name.json" > "$out/$name.log" 2>&1 || echo "FAILED: $name"
    grep -E '^forward' "$out/$name.log" | sed 's/^/    /'
  done
done
# Batch-1 sampling from CUDA graphs (`--graph-steps`): a 10-step DDIM trajectory eager and
# replayed, one graph per step, a router's host reads replayed from the eager run (whether the
# decision depends on the sample is measured and reported); one process per router (a capture
# that fails may leave the process's CUDA state unusable). GRAPH=0 skips it.
if [ "${GRAPH:-1}" = 1 ]; then
  graph() { # name model precision router
    # shellcheck disable=SC2086
    timeout 120 "$bin" bench --model "DiT-$2" --device tch-cuda:0 --precision "$3" $dims --train-batch 0 \
      --sample-batch 0 --sample-reps 5 --sample-routers "$4" --graph-steps 10 --graph-batch 1 \
      --json "$out/graph-$1.json" > "$out/graph-$1.log" 2>&1 || echo "FAILED: graph $1"
    grep -E '^graph' "$out/graph-$1.log" | sed 's/^/    /'
  }
  echo "[$(date +%H:%M:%S)] graphs"
  for r in ${GRAPH_ROUTERS:-dense topk expert-choice depth-budget dynamic-width token-skip text-budget content-aware step-cache}; do
    graph "S2-f32-$r" S/2 f32 "$r"
  done
  # The routers whose decision a sampler could reuse per step, on the other configurations.
  for r in ${GRAPH_MORE:-dense depth-budget dynamic-width text-budget step-cache}; do
    graph "S2-bf16-mixed-$r" S/2 bf16-mixed "$r"
    graph "B2-f32-$r" B/2 f32 "$r"
  done
fi
tar -C "$out" -czf "$out.tgz" . && ls -la "$out.tgz"
