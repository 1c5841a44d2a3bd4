#!/usr/bin/env python3
"""GPU time by kernel kind for each job of a bench/gpu/profile.sh output: a Markdown table of
each job's share of kernel time in matrix products, attention, copies/casts/indexing,
elementwise, layer norm and the rest (categories as bench/gpu/profile_report.py, from kernel
names). Shares need no repetition boundaries, so they hold for jobs whose profile has several
fixtures (`fwd-topk-*`: its three fixtures one after another).

    python3 bench/gpu/kernel_shares.py PROFILE_OUT [JOB ...]
"""
import json
import sys
from collections import defaultdict
from pathlib import Path

src = Path(__file__).with_name("profile_report.py").read_text()
ns = {}
exec(src[: src.index("METHOD = {}")], ns)  # the definitions only: sequence(), category()
out = Path(sys.argv[1])
jobs = sys.argv[2:] or sorted(p.name[: -len("-r1.csv")] for p in out.glob("*-r1.csv"))
kinds = ["matmul (cuBLAS/CUTLASS)", "attention (SDPA/flash)", "copy / cat / index / gather / scatter", "elementwise", "layer norm"]
print("| job | kernels (whole profile) | wall ms (plain, median) | " + " | ".join(kinds) + " | other |")
print("|---|---|---|" + "---|" * (len(kinds) + 1))
for job in jobs:
    seq = ns["sequence"](out / f"{job}-r1.csv")
    if not seq:
        continue
    cat, total = defaultdict(float), 0.0
    for name, t in seq:
        cat[ns["category"](name)] += t
        total += t
    plain = out / f"{job}-plain.json"
    wall = "; ".join(f"{s['label']} {s['time']['median_ms']:.2f}" for s in json.loads(plain.read_text())["sample"]) if plain.exists() else "—"
    shares = [cat.pop(k, 0.0) / total for k in kinds]
    rest = sum(cat.values()) / total
    print(f"| `{job}` | {len(seq)} | {wall} | " + " | ".join(f"{s:.0%}" for s in shares) + f" | {rest:.0%} |")
