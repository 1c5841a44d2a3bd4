#!/usr/bin/env bash
# Runs an experiment at GPU scale on every card of the machine, several runs per card (a small
# DiT leaves an H100 mostly idle between kernel launches, so concurrent runs raise throughput),
# through `dddit run --shard i/N`. Re-running resumes: finished runs are skipped, interrupted
# ones continue from their checkpoint.
#
#   bench/gpu/science.sh STAGE EXPERIMENT RUNS OUT [PER_GPU] [SECONDS]
#
# STAGE: a directory with dddit-gpu (scripts/build-gpu.sh), assets/inception/default_1.pt and
# fashion-mnist/*.gz. RUNS: the results directory (kept on the machine between calls). OUT:
# where the finished runs (without checkpoints), logs, table and plots are copied.
# SECONDS: stop the runs after this long (they resume on the next call).
set -uo pipefail
stage=$1; exp=$2; runs=$3; out=$4; per=${5:-3}; secs=${6:-520}
py=${PYTHON:-/opt/torch/.venv/bin/python}
export LD_LIBRARY_PATH=$($py -c 'import torch, os; print(os.path.dirname(torch.__file__))')/lib:${LD_LIBRARY_PATH:-}
export DDDIT_ASSETS=$stage/assets
mkdir -p "$out" "$runs"
fm=/usr/share/datasets/fashion-mnist
if [ ! -f $fm/train-images-idx3-ubyte.gz ]; then
  mkdir -p $fm && cp "$stage"/fashion-mnist/*.gz $fm/ || { echo "cannot install Fashion-MNIST into $fm"; exit 1; }
fi
gpus=$(nvidia-smi -L | wc -l)
n=$((gpus * per))
echo "$(date +%T) $exp: $gpus GPUs x $per runs each, $n shards, stop after ${secs}s"
pids=()
for i in $(seq 0 $((n - 1))); do
  CUDA_VISIBLE_DEVICES=$((i % gpus)) timeout -s INT "$secs" "$stage/dddit-gpu" run "$exp" --out "$runs" --device tch-cuda:0 --shard "$i/$n" > "$out/shard-$i.log" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
echo "$(date +%T) shards stopped"
"$stage/dddit-gpu" run "$exp" --out "$runs" --device tch-cuda:0 --dry-run | tail -25
"$stage/dddit-gpu" table "$runs" > "$out/table.txt" 2>&1 && "$stage/dddit-gpu" plot "$runs" >> "$out/table.txt" 2>&1
(cd "$runs" && tar --exclude='checkpoint*' -cf - .) | (mkdir -p "$out/results" && cd "$out/results" && tar -xf -)
du -sh "$out"
