#!/usr/bin/env python3
"""Tables of bench/gpu/routers.sh: routers.md (speed-ups against the GFLOPs ratio, the targets
of issue 19, operator calls per forward, host time per operator at batch 1) and routers.json
(a list of {model, precision, batch, router, label, gflops_ratio, speedup, ops, ms})."""
import json
import os
import subprocess
import sys

src, dest = sys.argv[1], sys.argv[2]
runs = []
for model in ("S2", "B2"):
    for p in ("f32", "bf16-mixed"):
        path = os.path.join(src, f"routers-{model}-{p}.json")
        if os.path.exists(path):
            runs.append((f"DiT-{model[0]}/{model[1]}", p, json.load(open(path))))
gpu = open(os.path.join(src, "gpu.txt")).read().strip() if os.path.exists(os.path.join(src, "gpu.txt")) else "?"
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
w(f"Card: {gpu}. Commit `{commit}` (`scripts/build-gpu.sh`). Made by `bench/gpu/routers.sh dddit-gpu OUT`, then")
w("`python3 bench/gpu/routers_report.py OUT results/gpu/routers`; raw JSON and logs in `routers-raw.tgz`.\n")
w("Inference forward of `dddit_routers::fixtures` (gate weights set so that each router makes a fixed")
w("decision), inputs 32×32×4 (256 tokens at patch 2), 1000 classes; median of 30 timed calls per router,")
w("taken round-robin over the routers after 5 warm-up rounds. GFLOPs: DiT convention, what the forward")
w("reports it ran; ratio = dense GFLOPs / router GFLOPs; speed-up = dense time / router time. A call")
w("includes the timestep and label upload and a read of one output element (the same 3 ops for every")
w("router). *ops*: top-level ATen operator calls of one forward (host dispatches; most launch a kernel),")
w("counted with a RecordFunction callback (`dddit_core::fused::count_ops`). *µs/op*: batch-1 time over ops.\n")
w("Targets: every skipping router ≥ 0.85 × its GFLOPs ratio at batch 64 and ≥ 0.7 × at batch 1;")
w("`topk` with one of E full-width experts per token within 1.1× of dense's time at equal GFLOPs.\n")
for model, p, r in runs:
    w(f"## {model}, {p}\n")
    w("| router | batch | GFLOPs ratio | ms | speed-up | speed-up / ratio | ops | µs/op | target |")
    w("|---|---|---|---|---|---|---|---|---|")
    for f in r["forward"]:
        q = f["speedup"] / f["gflops_ratio"]
        ops = f.get("ops")
        us = f"{f['time']['median_ms'] * 1e3 / ops:.1f}" if ops and f["batch"] == 1 else ""
        if f["router"] in SKIPPING:
            t = 0.85 if f["batch"] >= 64 else 0.7
            met = f"≥ {t}: " + ("yes" if q >= t else "**no**")
        elif f["router"] == "topk" and "token, capacity 1" in f["label"]:
            slow = 1.0 / f["speedup"]
            met = f"time ≤ 1.1× dense: {slow:.2f}× " + ("yes" if slow <= 1.1 else "**no**")
        else:
            met = "—"
        w(f"| {f['label']} | {f['batch']} | {f['gflops_ratio']:.2f} | {f['time']['median_ms']:.3f} | {f['speedup']:.2f} | {q:.2f} | {ops if ops is not None else '—'} | {us} | {met} |")
    w("")
open(dest + ".md", "w").write("\n".join(out) + "\n")
print("\n".join(out))
