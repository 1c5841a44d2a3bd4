#!/usr/bin/env bash
# bf16-mixed against tf32 in training: the same DiT-S/4 on 28×28 Fashion-MNIST (the GPU science
# settings of experiments/common/fashion-mnist-gpu.toml, no router), 3 seeds each, all six runs
# at once on one card. Writes each run's metrics.jsonl to OUT as <precision>-seed<k>.jsonl;
# bench/gpu/mixed_report.py plots them (results/gpu/mixed-precision.*).
#
#   bench/gpu/mixed.sh STAGE OUT [STEPS]
#
# STAGE: dddit-gpu and fashion-mnist/*.gz (bench/gpu/stage.sh). SPLIT (default train) picks the
# Fashion-MNIST split trained on: `test` (10k images, 4.4 MB) when the 60k training images do not
# fit a device call's 64 MiB beside the repository.
set -uo pipefail
stage=$1; out=$2; steps=${3:-1500}
source "$(dirname "$0")/env.sh"
export OMP_NUM_THREADS=2 RAYON_NUM_THREADS=2
work=/tmp/dddit-mixed
rm -rf "$work"; mkdir -p "$work" "$out"
pids=()
for p in tf32 bf16-mixed; do
  for s in 0 1 2; do
    f=$work/$p-seed$s.toml
    cat > "$f" <<TOML
device = "tch-cuda:0"
precision = "$p"
out = "$work/$p-seed$s"

[model]
preset = "DiT-S/4"
learn_sigma = true
class_dropout_prob = 0.1

[router]
kind = "dense"

[data]
kind = "fashion-mnist"
dir = "$stage/fashion-mnist"
split = "${SPLIT:-train}"
pad_to_32 = false

[train]
steps = $steps
batch_size = 256
lr = 5e-4
warmup_steps = 100
ema_decay = 0.999
ema_warmup = true
checkpoint_every = $steps
seed = $s
TOML
    "$stage/dddit-gpu" train "$f" > "$work/$p-seed$s.log" 2>&1 &
    pids+=($!)
  done
done
rc=0
for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
for p in tf32 bf16-mixed; do
  for s in 0 1 2; do
    cp "$work/$p-seed$s/metrics.jsonl" "$out/$p-seed$s.jsonl" 2>/dev/null || { echo "no metrics for $p seed $s"; tail -3 "$work/$p-seed$s.log"; rc=1; }
  done
done
tail -n 2 "$work"/*.log | tr '\r' '\n' | grep -E "done|error|Error" | head -12
exit $rc
