# Sourced by bench/gpu/*.sh: `py` is the GPU machine's PyTorch Python ($PYTHON overrides it),
# and its LibTorch libraries, which dddit-gpu links against, are put on LD_LIBRARY_PATH.
py=${PYTHON:-/opt/torch/.venv/bin/python}
export LD_LIBRARY_PATH=$($py -c 'import torch, os; print(os.path.dirname(torch.__file__))')/lib:${LD_LIBRARY_PATH:-}

# timed_train BIN OUT NAME TOML [--nproc N] [VAR=VALUE ...]: `BIN train TOML` into OUT/runs/NAME
# from scratch, its wall seconds in OUT/NAME.time, its log in OUT/NAME.log and its metrics in
# OUT/NAME.metrics.jsonl (read by bench/gpu/rates.py, which turns two runs of different step
# counts into a throughput with start-up and the final write cancelled out).
timed_train() {
  local bin=$1 out=$2 name=$3 toml=$4; shift 4
  local nproc=()
  if [ "${1:-}" = --nproc ]; then nproc=(--nproc "$2"); shift 2; fi
  cp "$toml" "$out/$name.toml" 2>/dev/null || true
  rm -rf "$out/runs/$name"
  local t0 t1
  t0=$(date +%s.%N)
  env "$@" timeout "${TRAIN_TIMEOUT:-300}" "$bin" train "$out/$name.toml" --out "$out/runs/$name" "${nproc[@]}" \
    > "$out/$name.log" 2>&1 || echo "FAILED: $name (see $name.log)"
  t1=$(date +%s.%N)
  echo "$t0 $t1" | awk '{printf "%.3f\n", $2 - $1}' > "$out/$name.time"
  cp "$out/runs/$name/metrics.jsonl" "$out/$name.metrics.jsonl" 2>/dev/null
  echo "  $name: $(cat "$out/$name.time") s"
}
