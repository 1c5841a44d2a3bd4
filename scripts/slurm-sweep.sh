#!/bin/bash
# A Slurm array job that spreads one dddit experiment over N tasks (see docs/slurm.md).
#
#   cargo build --release                      # once, on the shared checkout
#   sbatch --array=0-3 scripts/slurm-sweep.sh experiments/seed-6-1.toml [extra dddit run args]
#
# Task I of N runs the runs r with r mod N = I; all tasks write into results/<name>/ (or --out),
# one run directory each. Resubmitting (or --requeue after pre-emption) skips complete runs and
# resumes interrupted ones. When all tasks are done: ./target/release/dddit table results/<name>
#SBATCH --job-name=dddit-sweep
#SBATCH --cpus-per-task=8
#SBATCH --mem=8G
#SBATCH --time=04:00:00
#SBATCH --requeue
#SBATCH --output=logs/%x-%A_%a.log
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: sbatch --array=0-(N-1) $0 EXPERIMENT.toml [dddit run args...]" >&2
  exit 2
fi
experiment=$1
shift
cd "${SLURM_SUBMIT_DIR:-.}"
mkdir -p logs
task=${SLURM_ARRAY_TASK_ID:-0}
count=${SLURM_ARRAY_TASK_COUNT:-1}
exec ./target/release/dddit run "$experiment" --shard "$task/$count" "$@"
