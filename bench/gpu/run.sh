#!/usr/bin/env bash
# GPU benchmark: dddit (LibTorch-CUDA build, scripts/build-gpu.sh) against the project's PyTorch
# script (bench/torch_dit.py, eager and torch.compile) on the same card; each PART is one call.
#
#   [DDDIT_EXTRA="..."] [XL_TRAIN_BATCH=64] [XL_TRAIN_BATCH_BF16=256] bench/gpu/run.sh BINARY OUTDIR [PART]
#
# PART (each fits one 10-minute device call; estimates for an H100, see bench/README.md):
#   train    card, PyTorch version and matmul peak; DiT-S/2, DiT-B/2, DiT-XL/2: dddit tf32 and
#            bf16-mixed, PyTorch eager tf32 and bf16-autocast, training and sampling; DiT-S/2 also
#            f32 on both sides (~6-7 min)
#   compile  torch.compile tf32 and bf16-autocast, training only, DiT-S/2, DiT-B/2, DiT-XL/2
#            (~6 min; BINARY is not used)
#   routers  dddit's router speed-ups, DiT-S/2 f32 and bf16, inference forward at batch 1 and 64
#            (~1-2 min)
#   all      train, compile, routers in that order (default; ~15 min, over one call's limit)
#
# Inputs 32×32×4, 1000 classes, batch 256 for training and sampling, 10 DDIM steps. DiT-XL/2
# trains at batch 256 in bf16 (XL_TRAIN_BATCH_BF16; PyTorch autocast needs ~110 GiB there, so
# on a card under 100 GB the default is 128) and at XL_TRAIN_BATCH (default 64) in f32/tf32,
# whose activations alone are ~160 GiB
# at 256. Both sides of a row always run the same batch. Its sampling batch stays 256, with 1
# timed trajectory (after 1 warm-up).
#
# Every item runs on its own: one that fails (or runs past ITEM_TIMEOUT seconds, default 300)
# is logged and the next one runs. PART_BUDGET (seconds, default 540 for one part, none for
# `all`) caps the whole script: an item gets at most what is left of it, and items that would
# start with under 20 s left are skipped, so that the archive is written inside a 10-minute
# device call. DDDIT_EXTRA (default empty) is appended to every dddit command line.
# Each item writes OUTDIR/NAME.json (read by bench/gpu/report.py), NAME.log and NAME.mem (the
# cards' used memory in MiB, sampled by nvidia-smi every 200 ms; the peak is printed). Every
# part also writes gpu.csv and torch.txt. At the end everything goes into OUTDIR.tgz. Needs
# PyTorch 2.11 (CUDA) in $PYTHON (default: the device image's).
set -uo pipefail
bin=${1:?usage: bench/gpu/run.sh BINARY OUTDIR [train|compile|routers|all]}
out=${2:?usage: bench/gpu/run.sh BINARY OUTDIR [train|compile|routers|all]}
part=${3:-all}
case $part in train|compile|routers|all) ;; *) echo "unknown PART '$part': train, compile, routers or all"; exit 2 ;; esac
extra=${DDDIT_EXTRA:-}
xl_batch=${XL_TRAIN_BATCH:-64}
# bf16 at 256 needs ~110 GiB (H200); on an 80 GB card the default halves it.
card_mib=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits 2>/dev/null | head -1)
if [ "${card_mib:-0}" -gt 100000 ]; then xl_bf16_default=256; else xl_bf16_default=128; fi
xl_batch_bf16=${XL_TRAIN_BATCH_BF16:-$xl_bf16_default}
item_timeout=${ITEM_TIMEOUT:-300}
if [ "$part" = all ]; then budget=${PART_BUDGET:-0}; else budget=${PART_BUDGET:-540}; fi
source "$(dirname "$0")/env.sh"
here=$(cd "$(dirname "$0")" && pwd)
torch_dit="$here/../torch_dit.py"
mkdir -p "$out"
log() { echo "[$(date +%H:%M:%S)] $*"; }
run() { # name, command...
  local name=$1; shift
  local t0=$SECONDS smi="" limit=$item_timeout
  if [ "$budget" -gt 0 ]; then
    local left=$((budget - SECONDS))
    if [ "$left" -lt 20 ]; then log "SKIPPED: $name (${left}s of PART_BUDGET=${budget}s left)"; return; fi
    [ "$left" -lt "$limit" ] && limit=$left
  fi
  log "$name"
  if command -v nvidia-smi > /dev/null; then
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 > "$out/$name.mem" 2>/dev/null &
    smi=$!
  fi
  if ! timeout --kill-after=10 "$limit" "$@" > "$out/$name.log" 2>&1; then log "FAILED: $name"; tail -5 "$out/$name.log"; fi
  if [ -n "$smi" ]; then kill "$smi" 2>/dev/null; wait "$smi" 2>/dev/null; fi
  grep -E "^(train|sample|forward)" "$out/$name.log" | sed 's/^/    /'
  local mem=""
  [ -s "$out/$name.mem" ] && mem=", card memory peak $(sort -n "$out/$name.mem" | tail -1) MiB"
  echo "    ($((SECONDS - t0)) s$mem)"
}
card() {
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv > "$out/gpu.csv"
  cat "$out/gpu.csv"
  $py -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' | tee "$out/torch.txt"
}
dims="--image-size 32 --channels 4 --classes 1000"
# Per model and precision: training batch, then timing flags (warm-ups, timed steps, timed
# trajectories).
train_batch() {
  case $1 in
    DiT-XL/2) case $2 in bf16*) echo "$xl_batch_bf16" ;; *) echo "$xl_batch" ;; esac ;;
    *) echo 256 ;;
  esac
}
# WARMUP and REPS (default 3 and 10) shorten a part that must share its call with other work.
reps() {
  local w=${WARMUP:-3} r=${REPS:-10}
  case $1 in DiT-XL/2) echo "--warmup $w --reps $r --sample-reps 1" ;; *) echo "--warmup $w --reps $r --sample-reps 2" ;; esac
}
common() { echo "$dims --train-batch $(train_batch "$1" "$2") --sample-batch 256 --sample-steps 10 $(reps "$1")"; }
dddit() { # model, precision
  local tag=${1//[\/-]/}
  # shellcheck disable=SC2046,SC2086
  run "dddit-$tag-$2" "$bin" bench --model "$1" --device tch-cuda:0 --precision "$2" $(common "$1" "$2") --json "$out/dddit-$tag-$2.json" $extra
}
eager() { # model, precision
  local tag=${1//[\/-]/}
  # shellcheck disable=SC2046
  run "torch-eager-$tag-$2" $py "$torch_dit" --model "$1" --device cuda --precision "$2" $(common "$1" "$2") --json "$out/torch-eager-$tag-$2.json"
}
compiled() { # model, precision
  local tag=${1//[\/-]/}
  # shellcheck disable=SC2046
  run "torch-compile-$tag-$2" $py "$torch_dit" --model "$1" --device cuda --precision "$2" --compile $(common "$1" "$2") --sample-batch 0 --json "$out/torch-compile-$tag-$2.json"
}
log "part $part, binary $bin, DDDIT_EXTRA='$extra', XL_TRAIN_BATCH=$xl_batch, XL_TRAIN_BATCH_BF16=$xl_batch_bf16, ITEM_TIMEOUT=$item_timeout, PART_BUDGET=$budget, out $out"
card
if [ "$part" = train ] || [ "$part" = all ]; then
  run peak $py "$torch_dit" --device cuda --matmul-peak --json "$out/peak.json"
  cat "$out/peak.log"
  if [ -z "${SKIP_F32:-}" ]; then # SKIP_F32=1 leaves out the f32 reference row
    dddit DiT-S/2 f32
    eager DiT-S/2 f32
  fi
  for m in DiT-S/2 DiT-B/2 DiT-XL/2; do
    dddit "$m" tf32
    dddit "$m" bf16-mixed
    eager "$m" tf32
    eager "$m" bf16-autocast
  done
fi
if [ "$part" = compile ] || [ "$part" = all ]; then
  for m in DiT-S/2 DiT-B/2 DiT-XL/2; do
    compiled "$m" tf32
    compiled "$m" bf16-autocast
  done
fi
if [ "$part" = routers ] || [ "$part" = all ]; then
  for p in f32 bf16; do
    # shellcheck disable=SC2086
    run "dddit-routers-S2-$p" "$bin" bench --model DiT-S/2 --device tch-cuda:0 --precision $p $dims \
      --train-batch 0 --sample-batch 0 --forward-batches 1,64 --forward-routers topk,dynamic-width,token-skip,depth-budget --warmup 5 --reps 30 --json "$out/dddit-routers-S2-$p.json" $extra
  done
fi
log done
# $OUT brings back at most 8 files: everything in one archive.
tar -C "$out" -czf "$out.tgz" . && ls -la "$out.tgz"
