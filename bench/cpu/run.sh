#!/usr/bin/env bash
# CPU benchmark: dddit (criterion, crates/dddit-eval/benches/speed.rs) on flex, ndarray and
# tch-cpu against the project's PyTorch script (bench/torch_dit.py), one run, one machine.
#
#   LIBTORCH=/path/to/libtorch PYTHON=/path/to/python bench/cpu/run.sh OUTDIR
#
# LIBTORCH: a CPU LibTorch for the tch backend (scripts/fetch-libtorch.sh); PYTHON: a Python
# with PyTorch (scripts/cpu-torch.sh makes one from PyPI on a machine without CUDA).
# Then: python3 bench/cpu/report.py --json results/bench/cpu.json OUTDIR > results/bench/cpu.md
set -euo pipefail
out=$1
py=${PYTHON:-python3}
mkdir -p "$out"
export LD_LIBRARY_PATH=$LIBTORCH/lib:${LD_LIBRARY_PATH:-}
{ lscpu | grep -E "^(Model name|CPU\(s\)|Thread|Core|Socket|L2|L3)"; echo "AVX-512: $(grep -o "avx512[a-z_0-9]*" /proc/cpuinfo | sort -u | tr "\n" " ")"; free -g | head -2; uname -r; rustc --version; } > "$out/machine.txt"
cargo bench -p dddit-eval --bench speed --features ndarray,tch --locked 2>&1 | tee "$out/criterion.log"
cp -r "${CARGO_TARGET_DIR:-target}/criterion" "$out/criterion"
"$py" bench/torch_dit.py --model DiT-S/4 --image-size 32 --channels 1 --classes 10 --device cpu --precision f32 \
  --train-batch 32 --sample-batch 32 --sample-steps 5 --warmup 2 --reps 10 --sample-reps 3 --json "$out/torch.json" 2>&1 | tee "$out/torch.log"
