#!/usr/bin/env python3
"""Table of bench/gpu/ddp.sh: training throughput by number of GPUs and the scaling efficiency
(multi-GPU machine), or the NCCL check of a process group of one (one-GPU machine).

    COMMIT=abc1234 python3 bench/gpu/ddp_report.py OUTDIR DEST      # DEST.md and DEST.json

Throughput: (images of the longer run − images of the shorter) / (its seconds − the shorter's),
both runs of the same world size trained from scratch, so start-up and the final write cancel."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rates  # noqa: E402

src, dest = sys.argv[1], sys.argv[2]
commit = os.environ.get("COMMIT", "?")
gpu = open(os.path.join(src, "gpu.txt")).read().strip().splitlines()


def rate(prefix):
    return rates.rate(src, prefix)


out, rows = [], []
w = out.append
w("# Data-parallel training through NCCL (issue 21)\n")
w(f"Card(s): {len(gpu)} × {gpu[0]}. Commit `{commit}` (binary from `scripts/build-gpu.sh`, with NCCL). Made by")
w(f"`bench/gpu/ddp.sh dddit-gpu OUT`, then `COMMIT={commit} python3 bench/gpu/ddp_report.py OUT results/gpu/ddp`;")
w("raw logs and metrics in `ddp-raw.tgz`.\n")
w("Dense DiT-B/2 on 32×32 shapes images (256 tokens), TF32, AdamW, a fixed batch per GPU. Throughput:")
w("the extra images of a longer run over its extra seconds (both from scratch), so start-up, the")
w("rendezvous and the final checkpoint cancel out.\n")
if len(gpu) < 2:
    single, rs = rate("single")
    alone, ra = rate("nccl1")
    w("## One GPU: a process group of one\n")
    w("NCCL refuses two ranks on one device, so on a one-GPU machine the check is a world of one")
    w("(`DDDIT_DIST_ALONE=1`): every gradient bucket goes through `ProcessGroupNCCL`'s all-reduce")
    w("and is averaged over one rank. The losses must equal the single process's; the time")
    w("difference is what the bucketing and the collective cost.\n")
    if single and alone:
        worst = max(abs(a - b) / max(abs(a), 1e-12) for x, y in zip(rs, ra) for a, b in zip(x[3], y[3]))
        w("| run | images/s | losses: largest relative difference to the single process |")
        w("|---|---|---|")
        w(f"| single process | {single:.0f} | — |")
        w(f"| NCCL group of one | {alone:.0f} ({alone / single:.3f} of it) | {worst:.1e} |")
        rows = [{"gpus": 1, "mode": "single", "images_per_s": single},
                {"gpus": 1, "mode": "nccl-world-1", "images_per_s": alone, "max_rel_loss_diff": worst}]
    else:
        w("The runs did not finish: see the logs in the archive.")
    ev = {}
    for mode in ("single", "nccl1"):
        try:
            ev[mode] = json.load(open(os.path.join(src, f"eval-{mode}.json")))
        except (OSError, ValueError):
            pass
    if len(ev) == 2:
        strip = lambda v: [{k: x for k, x in f.items() if k != "seconds"} for f in v["features"]]
        same = strip(ev["single"]) == strip(ev["nccl1"]) and ev["single"]["class_accuracy"] == ev["nccl1"]["class_accuracy"]
        fd = ev["single"]["features"][0]["fd"]
        w(f"\n`dddit eval` of the single process's run (64 samples, classifier features), as one process and as")
        w(f"a group of one whose samples travel through NCCL's all-gather: FD {fd:.4f} and "
          f"{ev['nccl1']['features'][0]['fd']:.4f}; every metric equal: **{'yes' if same else 'no'}**.")
        rows.append({"gpus": 1, "mode": "eval-nccl-world-1", "metrics_equal": same})
    else:
        w("\n`dddit eval` through NCCL: did not finish (see `eval-*.log` in the archive).")
    w("\nScaling over several GPUs is not measured here: it needs a machine with several GPUs.")
else:
    base, _ = rate("ddp1")
    w("| GPUs | global batch | images/s | scaling efficiency | target |")
    w("|---|---|---|---|---|")
    for n in (1, 2, 4, 8):
        r, runs = rate(f"ddp{n}")
        if r is None:
            continue
        eff = r / (n * base) if base else None
        target = {2: 0.90, 4: 0.85}.get(n)
        t = f"≥ {target:.2f}: " + ("yes" if eff is not None and eff >= target else "**no**") if target else "—"
        w(f"| {n} | {runs[0][2]} | {r:.0f} | {eff:.3f} | {t} |" if eff is not None else f"| {n} | {runs[0][2]} | {r:.0f} | — | {t} |")
        rows.append({"gpus": n, "global_batch": runs[0][2], "images_per_s": r, "efficiency": eff})
json.dump(rows, open(dest + ".json", "w"), indent=1)
open(dest + ".md", "w").write("\n".join(out) + "\n")
print("\n".join(out))
