#!/usr/bin/env bash
# Kernel profile of dddit against PyTorch on the GPU, with Nsight Compute (ncu): every kernel's
# name and GPU time for
#   - one training step, DiT-S/2 on 32x32x4, batch 256, TF32: dddit and bench/torch_dit.py (eager);
#   - one DDIM step (forward) of each router of the speed-up benchmark, batch 1 and 64 (dddit).
# Each job runs one warm-up and one timed repetition under ncu; bench/gpu/profile_report.py
# finds the last repetition in the kernel sequence (it checked against a difference of a 1- and
# a 3-repetition profile on five jobs: same kernels, GPU time within 0.5 %). A plain timing of
# the same command (no profiler) follows each job on the same card, for the wall-clock side.
#
#   [PROFILE_ONLY=train] [FWD_PRECISIONS="f32 bf16-mixed"] bench/gpu/profile.sh BINARY OUTDIR
#   (PROFILE_ONLY: jobs whose name starts so; several prefixes separated by spaces)
#   python3 bench/gpu/profile_report.py OUTDIR > results/gpu/profile.md
#
# ncu runs with --clock-control none (the device machines' METHOD.md: leave the clocks alone)
# and one metric, gpu__time_duration.sum, so no kernel is replayed; it still serialises and
# slows every launch (a dddit training step of ~5,800 kernels takes ~90 s under it). Jobs are
# taken from a queue by one worker per card, the slowest first.
set -uo pipefail
bin=$1
out=$2
source "$(dirname "$0")/env.sh"
here=$(cd "$(dirname "$0")" && pwd)
ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
[ -x "$ncu" ] || { echo "no ncu found"; exit 1; }
mkdir -p "$out"
"$ncu" --version | tail -1 > "$out/ncu-version.txt"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > "$out/gpu.txt"
gpus=$(nvidia-smi -L | wc -l)
model="--model DiT-S/2 --image-size 32 --channels 4 --classes 1000"
jobs=()
# name|command (@R@ is replaced by the repetition count)
jobs+=("train-dddit|$bin bench $model --device tch-cuda:0 --precision tf32 --train-batch 256 --sample-batch 0 --warmup 1 --reps @R@")
jobs+=("train-torch|$py $here/../torch_dit.py $model --device cuda --precision tf32 --train-batch 256 --sample-batch 0 --warmup 1 --reps @R@")
# FWD_PRECISIONS: the forward jobs' precisions (f32 keeps the names fwd-ROUTER-bB; others are
# named fwd-PRECISION-ROUTER-bB).
for p in ${FWD_PRECISIONS:-f32}; do
  tag=$([ "$p" = f32 ] && echo "" || echo "$p-")
  for b in 1 64; do
    for r in dense topk dynamic-width token-skip depth-budget; do
      jobs+=("fwd-$tag$r-b$b|$bin bench $model --device tch-cuda:0 --precision $p --train-batch 0 --sample-batch $b --sample-steps 2 --sample-routers $r --sample-reps @R@")
    done
  done
done
if [ -n "${PROFILE_ONLY:-}" ]; then
  kept=()
  for j in "${jobs[@]}"; do
    for pre in $PROFILE_ONLY; do [[ ${j%%|*} == "$pre"* ]] && { kept+=("$j"); break; }; done
  done
  jobs=("${kept[@]}")
fi
run_job() { # index
  local spec=${jobs[$1]} name cmd
  name=${spec%%|*}; cmd=${spec#*|}
  "$ncu" --clock-control none --target-processes all --metrics gpu__time_duration.sum --csv --page raw --print-units base \
    --log-file "$out/$name-r1.csv" ${cmd//@R@/1} > "$out/$name-r1.log" 2>&1 || echo "FAILED: $name (ncu)"
  # The same step without the profiler, for the wall-clock time.
  ${cmd//@R@/10} --json "$out/$name-plain.json" > "$out/$name-plain.log" 2>&1 || echo "FAILED: $name plain"
}
next_job() { # prints the next job index (a counter shared by the workers)
  ( flock 9; i=$(cat "$out/.next"); echo $((i + 1)) > "$out/.next"; echo "$i" ) 9> "$out/.lock"
}
echo 0 > "$out/.next"
echo "$(date +%T) ${#jobs[@]} jobs on $gpus GPUs"
pids=()
for g in $(seq 0 $((gpus - 1))); do
  ( export CUDA_VISIBLE_DEVICES=$g
    while i=$(next_job) && [ "$i" -lt "${#jobs[@]}" ]; do echo "$(date +%T) GPU $g: ${jobs[$i]%%|*}"; run_job "$i"; done ) &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
echo "$(date +%T) profile done"
ls -la "$out" | head -60
