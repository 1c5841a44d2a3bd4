#!/usr/bin/env bash
# Quality against training steps for runs that keep EMA snapshots (`train.snapshots`, issue 20):
# a watcher, detached so that it outlives the call that started it, evaluates every snapshot
# as soon as the training run has written it (on the same card as the training, beside it),
# so the curve grows while the run trains and whatever finished before the machine goes back
# is kept.
#
#   bench/gpu/curve.sh watch   STAGE RUNS        # start the watcher, detached, and return
#   bench/gpu/curve.sh wait    RUNS SECONDS      # until training and watcher end or SECONDS pass
#   bench/gpu/curve.sh collect RUNS OUT          # OUT/curve.tgz: evaluations, metrics, logs
#
# STAGE as for bench/gpu/science.sh (dddit-gpu, assets/); RUNS is the directory the training was
# started in (`science.sh start STAGE EXPERIMENT RUNS 1`). Each snapshot N of a run R gets
# `R/eval-step-N.json` (10k samples, the experiment's sampler, Inception and classifier
# features, no timing; `R/eval-step-N.failed` if it failed) and its grid of samples
# `R/samples-step-N.png`. CURVE_EVAL overrides the evaluation flags; CURVE_FROM=N leaves the
# snapshots before step N unevaluated (points an earlier run already measured), so the watcher
# takes less of the card from the training beside it.
set -uo pipefail
cmd=$1; shift
source "$(dirname "$0")/env.sh"
export CUDA_MPS_PIPE_DIRECTORY=/tmp/dddit-mps/pipe CUDA_MPS_LOG_DIRECTORY=/tmp/dddit-mps/log
[ -S "$CUDA_MPS_PIPE_DIRECTORY/control" ] || unset CUDA_MPS_PIPE_DIRECTORY CUDA_MPS_LOG_DIRECTORY
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-2}
flags=${CURVE_EVAL:---samples 10000 --reference-samples 10000 --batch-size 1000 --features inception,classifier --sampler ddim --steps 25 --cfg-scale 1.5 --no-timing}

training_alive() { # RUNS: whether a shard started by science.sh still runs
  local p
  for p in $(cat "$1/.logs/pids" 2>/dev/null); do kill -0 "$p" 2>/dev/null && return 0; done
  return 1
}

pending() { # RUNS: "run-dir step" for every snapshot without its evaluation
  local s r n
  for s in "$1"/*/snapshots/step-*; do
    [ -f "$s/state.json" ] || continue
    r=$(dirname "$(dirname "$s")"); n=${s##*/step-}
    [ "$n" -ge "${CURVE_FROM:-0}" ] || continue
    [ -f "$r/eval-step-$n.json" ] || [ -f "$r/eval-step-$n.failed" ] || echo "$r $n"
  done | sort -k2 -n
}

case $cmd in
watch)
  stage=$1; runs=$2
  mkdir -p "$runs/.logs"
  cat > "$runs/.logs/watch.sh" <<EOF
#!/usr/bin/env bash
# Written by bench/gpu/curve.sh: evaluates snapshots until training has ended and none is left.
export DDDIT_ASSETS=$stage/assets CURVE_FROM=${CURVE_FROM:-0}
while :; do
  alive=0; for p in \$(cat "$runs/.logs/pids" 2>/dev/null); do kill -0 "\$p" 2>/dev/null && alive=1; done
  todo=\$(bash "$(cd "$(dirname "$0")" && pwd)/curve.sh" pending "$runs")
  if [ -z "\$todo" ]; then [ \$alive = 0 ] && break; sleep 15; continue; fi
  set -- \$(echo "\$todo" | head -1)
  echo "\$(date +%T) evaluating \$1 snapshot \$2"
  "$stage/dddit-gpu" eval "\$1" --snapshot "\$2" $flags --device tch-cuda:0 || { echo "evaluation failed"; touch "\$1/eval-step-\$2.failed"; }
done
echo "\$(date +%T) watcher done"
EOF
  setsid nohup bash "$runs/.logs/watch.sh" > "$runs/.logs/watch.log" 2>&1 < /dev/null &
  echo $! > "$runs/.logs/watch.pid"
  echo "watcher started (pid $(cat "$runs/.logs/watch.pid"))"
  ;;
pending)
  pending "$1"
  ;;
wait)
  runs=$1; secs=$2
  end=$(($(date +%s) + secs))
  while [ "$(date +%s)" -lt "$end" ]; do
    training_alive "$runs" && { sleep 10; continue; }
    kill -0 "$(cat "$runs/.logs/watch.pid" 2>/dev/null)" 2>/dev/null || break
    sleep 10
  done
  for d in "$runs"/*/; do
    [ -f "$d/run.json" ] || continue
    echo "$(basename "$d"): $(tail -1 "$d/metrics.jsonl" 2>/dev/null | cut -c1-160)"
    ls "$d" | grep -E '^(eval|samples).*step' | tr '\n' ' '; echo
  done
  tail -3 "$runs/.logs/watch.log" 2>/dev/null
  nvidia-smi --query-gpu=index,utilization.gpu,memory.used --format=csv,noheader
  ;;
collect)
  runs=$1; out=$2
  mkdir -p "$out"
  (cd "$runs" && tar --exclude='checkpoint*' --exclude='snapshots' -czf "$out/curve.tgz" .)
  ls -la "$out"
  ;;
*)
  echo "usage: curve.sh watch|pending|wait|collect ..."; exit 2 ;;
esac
