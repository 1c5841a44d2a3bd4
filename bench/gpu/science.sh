#!/usr/bin/env bash
# Runs an experiment at GPU scale on every card of the machine, several runs per card at once
# (a small DiT leaves a card mostly idle between kernel launches), through
# `dddit run --shard i/N`. Finished runs are skipped and interrupted ones resume from their
# checkpoint, so every step can be repeated.
#
#   bench/gpu/science.sh start   STAGE EXPERIMENT RUNS [PER_GPU]   # launch, detached, and return
#   bench/gpu/science.sh wait    RUNS SECONDS                      # poll until done or SECONDS pass
#   bench/gpu/science.sh collect STAGE EXPERIMENT RUNS OUT         # table, plots, runs without checkpoints
#
# STAGE: a directory with dddit-gpu (scripts/build-gpu.sh), assets/inception/default_1.pt and
# fashion-mnist/*.gz (bench/gpu/stage.sh assembles it). RUNS: the results directory on the
# machine. `start` detaches the shards (setsid), so they outlive the call that started them and
# a later call can wait for them. With SCIENCE_MPS=1 (default) the CUDA MPS daemon is started
# first, so the runs sharing a card execute their kernels concurrently instead of
# time-slicing; if MPS does not come up, the runs start without it. With SCIENCE_REUSE=DIR
# (e.g. the committed results/gpu/all-runs of an earlier machine) completed runs of equal
# settings are copied from DIR (`dddit run --reuse`) instead of trained again.
set -uo pipefail
cmd=$1; shift
source "$(dirname "$0")/env.sh"
export CUDA_MPS_PIPE_DIRECTORY=/tmp/dddit-mps/pipe CUDA_MPS_LOG_DIRECTORY=/tmp/dddit-mps/log
# Many processes per machine: one or two CPU threads each.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-2}

progress() { # RUNS: one line per run directory (done, or the last logged step)
  local runs=$1 d n
  for d in "$runs"/*/; do
    [ -f "$d/run.json" ] || continue
    if [ -f "$d/done.json" ]; then echo "  done   $(basename "$d")"; else
      n=$(tail -1 "$d/metrics.jsonl" 2>/dev/null | grep -o '"step":[0-9]*' | cut -d: -f2)
      echo "  step ${n:--}  $(basename "$d")"
    fi
  done
}

case $cmd in
start)
  stage=$1; exp=$2; runs=$3; per=${4:-3}
  export DDDIT_ASSETS=$stage/assets
  mkdir -p "$runs/.logs"
  fm=/usr/share/datasets/fashion-mnist
  if [ ! -f $fm/train-images-idx3-ubyte.gz ]; then
    mkdir -p $fm && cp "$stage"/fashion-mnist/*.gz $fm/ || { echo "cannot install Fashion-MNIST into $fm"; exit 1; }
  fi
  if [ "${SCIENCE_MPS:-1}" = 1 ]; then
    mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY"
    nvidia-cuda-mps-control -d 2>&1 && sleep 1
    if $py -c 'import torch; torch.ones(1, device="cuda").sum().item()' 2>"$runs/.logs/mps-check.txt"; then
      echo "MPS is on"
    else
      echo "MPS did not work ($(tail -1 "$runs/.logs/mps-check.txt")): stopping it, running without"
      echo quit | nvidia-cuda-mps-control 2>/dev/null; sleep 1
      unset CUDA_MPS_PIPE_DIRECTORY CUDA_MPS_LOG_DIRECTORY
    fi
  else
    unset CUDA_MPS_PIPE_DIRECTORY CUDA_MPS_LOG_DIRECTORY
  fi
  gpus=$(nvidia-smi -L | wc -l)
  n=$((gpus * per))
  echo "$(date +%T) $exp: $gpus GPUs x $per runs each, $n shards"
  reuse=(); [ -n "${SCIENCE_REUSE:-}" ] && reuse=(--reuse "$SCIENCE_REUSE")
  "$stage/dddit-gpu" run "$exp" --out "$runs" --device tch-cuda:0 --dry-run "${reuse[@]}" > "$runs/.logs/plan.txt" 2>&1
  echo "$(grep -c ' to do ' "$runs/.logs/plan.txt") runs to train, $(grep -c ' reuse ' "$runs/.logs/plan.txt") to copy, $(grep -c ' complete ' "$runs/.logs/plan.txt") complete"
  : > "$runs/.logs/pids"
  for i in $(seq 0 $((n - 1))); do
    CUDA_VISIBLE_DEVICES=$((i % gpus)) setsid nohup "$stage/dddit-gpu" run "$exp" --out "$runs" --device tch-cuda:0 --shard "$i/$n" "${reuse[@]}" \
      > "$runs/.logs/shard-$i.log" 2>&1 < /dev/null &
    echo $! >> "$runs/.logs/pids"
  done
  sleep 20
  progress "$runs" | head -5
  ;;
wait)
  runs=$1; secs=$2
  end=$(($(date +%s) + secs))
  while [ "$(date +%s)" -lt "$end" ]; do
    alive=0
    for p in $(cat "$runs/.logs/pids"); do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
    [ "$alive" = 0 ] && break
    sleep 10
  done
  echo "$(date +%T) $alive shards still running"
  progress "$runs"
  nvidia-smi --query-gpu=index,utilization.gpu,memory.used --format=csv,noheader
  ;;
collect)
  stage=$1; exp=$2; runs=$3; out=$4
  export DDDIT_ASSETS=$stage/assets
  mkdir -p "$out"
  cp -r "$runs/.logs" "$out/logs"
  "$stage/dddit-gpu" run "$exp" --out "$runs" --device tch-cuda:0 --dry-run > "$out/state.txt" 2>&1
  "$stage/dddit-gpu" table "$runs" > "$out/table.txt" 2>&1 && "$stage/dddit-gpu" plot "$runs" >> "$out/table.txt" 2>&1
  (cd "$runs" && tar --exclude='checkpoint*' --exclude=.logs -cf - .) | (mkdir -p "$out/results" && cd "$out/results" && tar -xf -)
  du -sh "$out"
  ;;
*)
  echo "usage: science.sh start|wait|collect ..."; exit 2 ;;
esac
