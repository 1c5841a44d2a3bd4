#!/usr/bin/env python3
"""Welch's t-test of a router's GFLOPs ratio in the lowest DDPM-t range against the highest, over
the seeds of a results directory (the seed's Table 6.3 question: does compute follow noise?).

    python3 scripts/by_t_welch.py results/seed-6-1 results/gpu/seed-6-3 ...

DDPM t: 0 = clean image, 999 = pure noise. Prints, per point: n, ratio at t in [0, 200) and at
[500, 1000) (mean ± std), and the two-sided p of their difference (Welch, scipy).
"""
import json
import warnings
import pathlib
import sys
from collections import defaultdict

from scipy import stats

warnings.simplefilter("ignore")  # scipy warns on identical values (dense: no spread)

for root in sys.argv[1:]:
    by_point = defaultdict(list)
    for run in sorted(pathlib.Path(root).iterdir()):
        if not (run / "done.json").exists():
            continue
        rec = json.loads((run / "run.json").read_text())
        ev = json.loads((run / "eval.json").read_text())
        by_t = ev["compute"]["by_t"]
        by_point[rec["point"]].append((by_t[0]["gflops_ratio"], by_t[-1]["gflops_ratio"]))
    print(f"## {root}")
    print("| point | n | DDPM t∈[0,200) | DDPM t∈[500,1000) | p (Welch) |")
    print("|---|---|---|---|---|")
    for point, v in by_point.items():
        lo = [a for a, _ in v]
        hi = [b for _, b in v]
        m = lambda x: sum(x) / len(x)
        sd = lambda x: stats.tstd(x) if len(x) > 1 else 0.0
        if len(v) > 1 and (sd(lo) > 0 or sd(hi) > 0):
            p = f"{stats.ttest_ind(lo, hi, equal_var=False).pvalue:.2g}"
        elif len(v) > 1:
            p = "0 (no spread)" if m(lo) != m(hi) else "1"
        else:
            p = "n/a (1 seed)"
        print(f"| {point} | {len(v)} | {m(lo):.3f} ± {sd(lo):.3f} | {m(hi):.3f} ± {sd(hi):.3f} | {p} |")
    print()
