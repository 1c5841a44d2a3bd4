#!/usr/bin/env python3
"""Table of bench/gpu/train_rate.sh: dddit train's images per second for dense DiT-S/4 on
Fashion-MNIST by batch and precision, and the aggregate rate of several runs sharing the card
under MPS; with what that means for issue 20's plan (minutes per 1M images).

    COMMIT=abc1234 python3 bench/gpu/train_rate_report.py OUTDIR DEST      # DEST.md and DEST.json
"""
import glob
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rates  # noqa: E402

src, dest = sys.argv[1], sys.argv[2]
commit = os.environ.get("COMMIT", "?")
gpu = open(os.path.join(src, "gpu.txt")).read().strip().splitlines()[0]
prefixes = sorted({re.sub(r"-\d+\.time$", "", os.path.basename(p)) for p in glob.glob(os.path.join(src, "*.time"))})
out, rows = [], []
w = out.append
w("# dddit train's throughput on one card (issue 20's plan)\n")
w(f"Card: {gpu}. Commit `{commit}` (binary from `scripts/build-gpu.sh`). Made by `bench/gpu/train_rate.sh STAGE OUT`,")
w(f"then `COMMIT={commit} python3 bench/gpu/train_rate_report.py OUT results/gpu/train-rate`; raw logs in `train-rate-raw.tgz`.\n")
w("Dense DiT-S/4 (49 tokens) on Fashion-MNIST 28×28, the settings of `experiments/common/fashion-mnist-gpu.toml`,")
w("`dddit train` as a sweep runs it (data order, AdamW, EMA, metrics). Rate: the extra images of a longer")
w("run over its extra seconds, both from scratch (`bench/gpu/rates.py`). *min / 1M images*: minutes of")
w("the card per million training images at that rate.\n")
w("| runs at once | precision | batch | images/s (sum over runs) | steps/s per run | min / 1M images |")
w("|---|---|---|---|---|---|")

def order(prefix):
    m = re.match(r"(?:rate|mps(\d+)\.(\d+))-(.+)-b(\d+)$", prefix)
    return (int(m.group(1) or 1), m.group(3), int(m.group(4))) if m else (0, "", 0)


for prefix in sorted(prefixes, key=order):
    m = re.match(r"(?:rate|mps(\d+)\.(\d+))-(.+)-b(\d+)$", prefix)
    if not m or (m.group(2) and m.group(2) != "1"):
        continue  # one row per MPS group, from its first copy's name
    k = int(m.group(1) or 1)
    total, per_run = 0.0, []
    for i in range(1, k + 1):
        r, _ = rates.rate(src, prefix if k == 1 else f"mps{k}.{i}-{m.group(3)}-b{m.group(4)}")
        if r is None:
            total = None
            break
        total += r
        per_run.append(r / int(m.group(4)))
    if total is None:
        w(f"| {k} | {m.group(3)} | {m.group(4)} | did not finish | | |")
        continue
    sps = sum(per_run) / len(per_run)
    w(f"| {k} | {m.group(3)} | {m.group(4)} | {total:.0f} | {sps:.2f} | {1e6 / total / 60:.2f} |")
    rows.append({"copies": k, "precision": m.group(3), "batch": int(m.group(4)), "images_per_s": total, "steps_per_s": sps})
json.dump(rows, open(dest + ".json", "w"), indent=1)
open(dest + ".md", "w").write("\n".join(out) + "\n")
print("\n".join(out))
