#!/usr/bin/env bash
# Data-parallel training through c10d's NCCL (issue 21): DiT-B/2 on 32×32 shapes images, TF32,
# a fixed batch per GPU (weak scaling, as DDP users run it), on 1, 2, 4 and 8 GPUs of this
# machine (those it has), launched by `dddit train --nproc N`.
#
#   [PER_GPU=128] [STEPS="10 60"] bench/gpu/ddp.sh BINARY OUTDIR
#   python3 bench/gpu/ddp_report.py OUTDIR results/gpu/ddp      # .md and .json
#
# Each world size trains twice from scratch, for the two step counts of STEPS; the throughput is
# the extra images of the longer run over its extra seconds, so start-up, the rendezvous, the
# first steps' kernel selection and the final checkpoint cancel out. Scaling efficiency =
# throughput on N GPUs / (N × throughput on 1).
#
# On a machine with one GPU (NCCL refuses two ranks on one device) it runs the check that is
# possible there: the same training as one process and as a process group of one
# (DDDIT_DIST_ALONE=1), whose every gradient bucket goes through NCCL's all-reduce; the losses
# of the two must agree and the difference in time is what the collectives cost. Then the
# same for `dddit eval` (its samples gathered through NCCL).
set -uo pipefail
bin=${1:?usage: bench/gpu/ddp.sh BINARY OUTDIR}
out=${2:?usage: bench/gpu/ddp.sh BINARY OUTDIR}
source "$(dirname "$0")/env.sh"
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > "$out/gpu.txt"
gpus=$(wc -l < "$out/gpu.txt")
per=${PER_GPU:-128}
read -r s1 s2 <<< "${STEPS:-10 60}"
config() { # FILE WORLD STEPS
  cat > "$1" <<EOF
device = "tch-cuda:0"
precision = "tf32"
[model]
preset = "DiT-B/2"
[router]
kind = "dense"
[data]
kind = "shapes"
size = 32
len = 65536
[train]
steps = $3
batch_size = $(( per * $2 ))
lr = 1e-4
checkpoint_every = 100000
ema_decay = 0.9999
EOF
}
train() { # NAME WORLD STEPS [VAR=VALUE ...]
  local name=$1 world=$2 steps=$3; shift 3
  config "$out/$name.toml" "$world" "$steps"
  local nproc=()
  [ "$world" -gt 1 ] && nproc=(--nproc "$world")
  timed_train "$bin" "$out" "$name" "$out/$name.toml" "${nproc[@]}" "$@"
}
echo "[$(date +%H:%M:%S)] $gpus GPU(s): $(head -1 "$out/gpu.txt")"
if [ "$gpus" -lt 2 ]; then
  alone=(DDDIT_DIST_ALONE=1 WORLD_SIZE=1 RANK=0 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=29517)
  for s in "$s1" "$s2"; do
    train "single-$s" 1 "$s"
    train "nccl1-$s" 1 "$s" "${alone[@]}"
  done
  grep -h "data parallel" "$out"/nccl1-*.log | head -1
  # The evaluation's gather through NCCL too: the group of one samples, gathers its batches
  # (ProcessGroup::all_gather_bytes) and scores them; eval.json must equal the single process's.
  printf 'samples = 64\nbatch_size = 16\nreference_samples = 64\ntiming = false\ngrid = 0\nstats_cache = "%s"\n[sample]\nsteps = 10\n' \
    "$out/stats" > "$out/eval.toml"
  run=$out/runs/single-$s2
  for mode in single nccl1; do
    vars=(); [ $mode = nccl1 ] && vars=("${alone[@]}")
    if env "${vars[@]}" timeout 180 "$bin" eval "$run" --features classifier --config "$out/eval.toml" \
      > "$out/eval-$mode.log" 2>&1; then cp "$run/eval.json" "$out/eval-$mode.json"; else echo "FAILED: eval $mode"; fi
  done
else
  for n in 1 2 4 8; do
    [ "$n" -gt "$gpus" ] && break
    for s in "$s1" "$s2"; do train "ddp$n-$s" "$n" "$s"; done
  done
fi
rm -rf "$out/runs"
tar -C "$out" -czf "$out.tgz" . && ls -la "$out.tgz"
