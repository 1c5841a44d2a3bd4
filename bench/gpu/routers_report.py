#!/usr/bin/env python3
"""Tables of bench/gpu/routers.sh: routers.md (speed-ups against the GFLOPs ratio, the targets
of issue 19, operator calls per forward, host time per operator at batch 1, the CUDA-graph
study) and routers.json (a list of {model, precision, batch, router, label, gflops_ratio,
speedup, ops, ms}).

    python3 bench/gpu/routers_report.py OUT DEST [BASE_OUT]

BASE_OUT: the same script's output for another binary (the code before), same call and card;
its speed-up / ratio is shown beside."""
import glob
import json
import os
import re
import subprocess
import sys

src, dest = sys.argv[1], sys.argv[2]
base_dir = sys.argv[3] if len(sys.argv) > 3 else None
# Labels of the code before issue 19 for the same fixtures.
ALIAS = {"topk (E=4, k=1, token)": "topk (E=4, k=1, token, dropless)"}


def load(d):
    runs = []
    for model in ("S2", "B2"):
        for p in ("f32", "bf16-mixed"):
            path = os.path.join(d, f"routers-{model}-{p}.json")
            if os.path.exists(path):
                runs.append((f"DiT-{model[0]}/{model[1]}", p, json.load(open(path))))
    return runs


runs = load(src)
base = {}
if base_dir:
    for model, p, r in load(base_dir):
        for f in r["forward"]:
            base[(model, p, f["batch"], ALIAS.get(f["label"], f["label"]))] = f
gpu = open(os.path.join(src, "gpu.txt")).read().strip() if os.path.exists(os.path.join(src, "gpu.txt")) else "?"
# COMMIT: the commit the measured binary was built from (default: HEAD).
commit = os.environ.get("COMMIT")
if not commit:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = "?"
rows = []
for model, p, r in runs:
    for f in r["forward"]:
        rows.append({
            "model": model, "precision": p, "batch": f["batch"], "router": f["router"], "label": f["label"],
            "gflops_ratio": round(f["gflops_ratio"], 4), "speedup": round(f["speedup"], 4),
            "ops": f.get("ops"), "ms": round(f["time"]["median_ms"], 4),
        })
with open(dest + ".json", "w") as fh:
    json.dump(rows, fh, indent=1)

SKIPPING = {"depth-budget", "dynamic-width", "token-skip", "text-budget", "content-aware", "step-cache"}
out = []
w = out.append
w("# Router speed-ups on one GPU (issue 19)\n")
w(f"Card: {gpu}. Commit `{commit}` (binary from `scripts/build-gpu.sh`). Made by")
w("`bench/gpu/routers.sh dddit-gpu OUT` (and `GRAPH=0 bench/gpu/routers.sh dddit-gpu-base BASE` for the")
w("binary before, built the same way at `6ff325b`, same call), then")
w(f"`COMMIT={commit} python3 bench/gpu/routers_report.py OUT results/gpu/routers BASE`; raw JSON and logs in")
w(f"`routers-raw-{commit}.tgz` and `routers-raw-base-6ff325b.tgz`.\n")
w("Inference forward of `dddit_routers::fixtures` (gate weights set so that each router makes a fixed")
w("decision; `topk`'s gate is its random initialisation, which sends tokens unevenly: at capacity 1")
w("about a quarter of the assignments overflow and are dropped, hence its GFLOPs ratio above 1),")
w("inputs 32×32×4 (256 tokens at patch 2), 1000 classes; median of 30 timed calls per router, taken")
w("round-robin over the routers after 5 warm-up rounds. GFLOPs: DiT convention, what the forward")
w("reports it ran; ratio = dense GFLOPs / router GFLOPs; speed-up = dense time / router time. A call")
w("includes the timestep and label upload and a read of one output element (the same for every")
w("router). *ops*: top-level ATen operator calls of one forward (host dispatches; most launch a")
w("kernel), counted with a RecordFunction callback (`dddit_core::fused::count_ops`). *µs/op*: batch-1")
w("time over ops. *before*: speed-up / ratio of the code before this issue (`6ff325b`), same call.\n")
w("Targets: every skipping router ≥ 0.85 × its GFLOPs ratio at batch 64 and ≥ 0.7 × at batch 1;")
w("`topk` with one of E full-width experts per token within 1.1× of dense's time at equal GFLOPs.\n")
for model, p, r in runs:
    w(f"## {model}, {p}\n")
    w("| router | batch | GFLOPs ratio | ms | speed-up | speed-up / ratio | before | ops | µs/op | target |")
    w("|---|---|---|---|---|---|---|---|---|---|")
    for f in r["forward"]:
        q = f["speedup"] / f["gflops_ratio"]
        ops = f.get("ops")
        us = f"{f['time']['median_ms'] * 1e3 / ops:.1f}" if ops and f["batch"] == 1 else ""
        b = base.get((model, p, f["batch"], f["label"]))
        before = f"{b['speedup'] / b['gflops_ratio']:.2f}" if b else "—"
        if f["router"] in SKIPPING:
            t = 0.85 if f["batch"] >= 64 else 0.7
            met = f"≥ {t}: " + ("yes" if q >= t else "**no**")
        elif f["router"] == "topk" and "token, dropless" in f["label"]:
            # Equal GFLOPs: dropless runs every assignment (capacity 1 drops some, ratio > 1).
            slow = 1.0 / f["speedup"]
            met = f"≤ 1.1× dense: {slow:.2f}× " + ("yes" if slow <= 1.1 else "**no**")
        else:
            met = "—"
        w(f"| {f['label']} | {f['batch']} | {f['gflops_ratio']:.2f} | {f['time']['median_ms']:.3f} | {f['speedup']:.2f} | {q:.2f} | {before} | {ops if ops is not None else '—'} | {us} | {met} |")
    w("")
graphs = []
for path in sorted(glob.glob(os.path.join(src, "graph-*.json"))):
    r = json.load(open(path))
    for g in r.get("graph", []):
        graphs.append((r["model"], r["precision"], g))
if graphs:
    # Batch-1 GFLOPs ratio of each fixture, from the forward rows of the same model (analytic
    # GFLOPs: the same in every precision).
    ratio = {(model, f["label"]): f["gflops_ratio"] for model, p, r in runs for f in r["forward"] if f["batch"] == 1}
    # RATIOS=routers.json of an earlier measurement: the ratios of configurations not timed now
    # (the fixtures' GFLOPs do not depend on the card or the code's speed).
    if os.environ.get("RATIOS"):
        for row in json.load(open(os.environ["RATIOS"])):
            if row["batch"] == 1:
                ratio.setdefault((row["model"], row["label"]), row["gflops_ratio"])
    dense_graph = {(model, p): g["graph_ms"] for model, p, g in graphs if g["router"] == "dense" and "graph_ms" in g}
    w("## Batch-1 sampling from CUDA graphs\n")
    w("`dddit bench --graph-steps 10 --graph-batch 1`: one 10-step DDIM trajectory (no guidance), eager")
    w("and replayed from one CUDA graph per step (`dddit_core::cuda_graph`, `at::cuda::CUDAGraph` through")
    w("the C++ shim), median of 5; *max |diff|*: largest difference between the two trajectories' outputs.")
    w("A router that reads its decision on the host is captured with the eager run's reads replayed")
    w("(`dddit_core::routing::tape`); *decision*: `none` (no host read), `per-step` (the same decision")
    w("for other noise at every step: a sampler can reuse the step's graph for any sample), `per-input`")
    w("(the decision follows the sample: the graph holds for this trajectory's inputs only, so its time")
    w("is not a speed-up a sampler could have). *vs dense graph*: dense's graph time over the router's;")
    w("*/ ratio*: that over the batch-1 GFLOPs ratio (target ≥ 0.7 for the skipping routers). A")
    w("forward that uploads host data or sizes a tensor from device values inside a step still cannot")
    w("be captured: the error says where.\n")
    w("| model | precision | router | decision | eager ms | graph ms | speed-up | vs dense graph | / ratio | max \\|diff\\| | note |")
    w("|---|---|---|---|---|---|---|---|---|---|---|")
    for model, p, g in graphs:
        dec = g.get("decision", "—")
        if "graph_ms" in g:
            d = dense_graph.get((model, p))
            rt = ratio.get((model, g["label"]))
            vs = d / g["graph_ms"] if d else None
            q = vs / rt if vs and rt else None
            note = ""
            if q is not None and g["router"] in SKIPPING:
                note = "per-input decision: not counted" if dec == "per-input" else ("≥ 0.7: " + ("yes" if q >= 0.7 else "**no**"))
            vs_s = f"{vs:.2f}" if vs else "—"
            q_s = f"{q:.2f}" if q is not None and g["router"] != "dense" else "—"
            w(f"| {model} | {p} | {g['label']} | {dec} | {g['eager_ms']:.2f} | {g['graph_ms']:.2f} | {g['speedup']:.2f} | {vs_s} | {q_s} | {g['max_abs_diff']:.1e} | {note} |")
        else:
            err = g.get("error", "?")
            # LibTorch's message without the Rust unwrap around it and its C++ backtrace.
            m = re.search(r'Torch\("(.*?)(\\n|\n|"\))', err)
            err = (m.group(1) if m else err).replace("|", "/").replace("\n", " ")[:160]
            w(f"| {model} | {p} | {g['label']} | {dec} | {g['eager_ms']:.2f} | — | — | — | — | — | not capturable: {err} |")
    w("")
open(dest + ".md", "w").write("\n".join(out) + "\n")
print("\n".join(out))
