#!/usr/bin/env bash
# dddit train's real throughput on one card, for issue 20's plan: dense DiT-S/4 on Fashion-MNIST
# 28×28 with the settings of experiments/common/fashion-mnist-gpu.toml (data order, AdamW,
# EMA, logging, checkpoint all included), at several batches and precisions; then COPIES runs at
# once on the card under MPS (as bench/gpu/science.sh runs a sweep), for the aggregate rate.
#
#   [BATCHES="256 512 1024"] [PRECISIONS="tf32 bf16-mixed"] [COPIES="2 4"] [STEPS="20 220"] \
#     bench/gpu/train_rate.sh STAGE OUTDIR
#   COMMIT=abc1234 python3 bench/gpu/train_rate_report.py OUTDIR results/gpu/train-rate
#
# STAGE as for bench/gpu/science.sh (dddit-gpu and fashion-mnist/*.gz). Each configuration
# trains twice from scratch, STEPS apart, and the rate is the difference (bench/gpu/rates.py).
set -uo pipefail
stage=${1:?usage: bench/gpu/train_rate.sh STAGE OUTDIR}
out=${2:?usage: bench/gpu/train_rate.sh STAGE OUTDIR}
source "$(dirname "$0")/env.sh"
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > "$out/gpu.txt"
fm=/usr/share/datasets/fashion-mnist
[ -f $fm/train-images-idx3-ubyte.gz ] || { mkdir -p $fm && cp "$stage"/fashion-mnist/*.gz $fm/; }
read -r s1 s2 <<< "${STEPS:-20 220}"
config() { # FILE BATCH PRECISION STEPS
  cat > "$1" <<TOML
device = "tch-cuda:0"
precision = "$3"
[model]
preset = "DiT-S/4"
learn_sigma = true
class_dropout_prob = 0.1
[router]
kind = "dense"
[data]
kind = "fashion-mnist"
split = "train"
pad_to_32 = false
[train]
steps = $4
batch_size = $2
lr = 5e-4
warmup_steps = 100
ema_decay = 0.999
ema_warmup = true
checkpoint_every = 100000
TOML
}
for p in ${PRECISIONS:-tf32 bf16-mixed}; do
  for b in ${BATCHES:-256 512 1024}; do
    for s in "$s1" "$s2"; do
      name="rate-$p-b$b-$s"
      config "$out/$name.toml" "$b" "$p" "$s"
      timed_train "$stage/dddit-gpu" "$out" "$name" "$out/$name.toml"
    done
  done
done
# COPIES runs at once under MPS, batch 256, TF32: each copy is timed on its own; the report
# sums their rates (copies overlap for most of their time).
if [ -n "${COPIES-2 4}" ]; then
  export CUDA_MPS_PIPE_DIRECTORY=/tmp/dddit-mps/pipe CUDA_MPS_LOG_DIRECTORY=/tmp/dddit-mps/log
  mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY"
  nvidia-cuda-mps-control -d 2>/dev/null && sleep 1
  for k in ${COPIES-2 4}; do
    for s in "$s1" "$s2"; do
      for i in $(seq 1 "$k"); do
        name="mps$k.$i-tf32-b256-$s"
        config "$out/$name.toml" 256 tf32 "$s"
        timed_train "$stage/dddit-gpu" "$out" "$name" "$out/$name.toml" &
      done
      wait
    done
  done
  echo quit | nvidia-cuda-mps-control 2>/dev/null
fi
rm -rf "$out/runs"
tar -C "$out" -czf "$out.tgz" . && ls -la "$out.tgz"
