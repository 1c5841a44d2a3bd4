#!/usr/bin/env bash
# The CPU router benchmark (crates/dddit-routers/benches/routers.rs) of two commits, run
# alternately on one machine, so that a change's effect can be told from the machine's drift
# (on a shared 2-core VM one run's speed-ups move by up to ±10 %).
#
#   bench/cpu/routers_ab.sh COMMIT_A COMMIT_B OUT [RUNS]
#
# Builds each commit's bench binary in a throw-away worktree (CARGO_TARGET_DIR shared, one build
# at a time), then runs A, B, A, B, … RUNS times each (default 4; about 4 minutes per run on 2
# cores) into OUT/A-1.md, OUT/B-1.md, …, and OUT/commits.txt. FIRST=k starts at run k, to add
# runs to an OUT that has runs 1…k−1 of the same two commits. HARNESS=FILE builds both commits
# with FILE as crates/dddit-routers/benches/routers.rs (say, one that knows DDDIT_BENCH_ROUTERS
# for a commit older than it): the harness then is the same, what it times is each commit's. The
# bench's own variables (DDDIT_BENCH_ROUTERS, _REPS, …) pass through. Then:
#   python3 bench/cpu/routers_ab.py OUT > results/bench/routers-ab/NAME/report.md
# (results/bench/routers-ab/NAME/runs/ keeps OUT's A-*.md, B-*.md, commits.txt, machine.txt).
set -euo pipefail
a=$1 b=$2 out=$3 runs=${4:-4} first=${FIRST:-1}
root=$(git rev-parse --show-toplevel)
harness=${HARNESS:+$(realpath "$HARNESS")}
target=${CARGO_TARGET_DIR:-$root/target}
mkdir -p "$out"
[ "$first" = 1 ] && : > "$out/commits.txt"
for tag in A B; do
  c=$a; [ "$tag" = B ] && c=$b
  sha=$(git -C "$root" rev-parse --short "$c")
  wt=$(mktemp -d /tmp/routers-ab-XXXXXX)
  git -C "$root" worktree add -f -q --detach "$wt" "$sha"
  [ -z "$harness" ] || cp "$harness" "$wt/crates/dddit-routers/benches/routers.rs"
  # The bench binary's path is the last `Executable` line of cargo's output.
  exe=$(cd "$wt" && CARGO_TARGET_DIR=$target cargo bench -p dddit-routers --bench routers --no-run --locked 2>&1 \
    | tee "$out/build-$tag.log" | sed -n 's/.*Executable benches\/routers.rs (\(.*\))/\1/p' | tail -1)
  [ -n "$exe" ] || { echo "no bench binary for $sha (see $out/build-$tag.log)" >&2; exit 1; }
  cp "$exe" "$out/bench-$tag"
  git -C "$root" worktree remove --force "$wt"
  line="$tag $sha $(git -C "$root" log -1 --format=%cs "$sha")${HARNESS:+ (harness: $HARNESS)}${DDDIT_BENCH_ROUTERS:+ (routers: $DDDIT_BENCH_ROUTERS)}"
  if [ "$first" = 1 ]; then echo "$line" >> "$out/commits.txt"
  else grep -qx "$line" "$out/commits.txt" || { echo "$out holds runs of other commits" >&2; exit 1; }; fi
done
{ lscpu | grep -E "^(Model name|CPU\(s\))" | sed 's/  */ /g'; uname -r; date -u +%FT%TZ; } >> "$out/machine.txt"
cd "$root/crates/dddit-routers"
for i in $(seq "$first" "$runs"); do
  for tag in A B; do
    echo "run $i $tag $(date -u +%T)" >&2
    "$out/bench-$tag" --bench > "$out/$tag-$i.md"
  done
done
rm -f "$out/bench-A" "$out/bench-B"
