#!/usr/bin/env python3
"""Welch's two-sided t-test between two rows of a results table (`table.json`), for the
comparisons the table's own dense-baseline column does not make (e.g. full vs quarter training
within one setting of `results/metric-power`).

    python3 scripts/welch_rows.py results/metric-power/table.json ROW_A ROW_B [ROW_A ROW_B ...]

Prints FD (each extractor) and class accuracy (each judge) of both rows, mean ± std (n), and p.
"""
import json
import sys

from scipy import stats

table = json.load(open(sys.argv[1]))
rows = {r["point"]: r for r in table["rows"]}
pairs = sys.argv[2:]
print("| row A | row B | metric | A | B | p (Welch) |")
print("|---|---|---|---|---|---|")
for a, b in zip(pairs[::2], pairs[1::2]):
    ra, rb = rows[a], rows[b]
    metrics = [(f"FD [{f['extractor']}]", f["fd"], next(g["fd"] for g in rb["features"] if g["extractor"] == f["extractor"])) for f in ra["features"]]
    metrics += [(f"class acc [{j}]", s, rb["class_accuracy"][j]) for j, s in ra["class_accuracy"].items()]
    for name, sa, sb in metrics:
        if sa["n"] > 1 and sb["n"] > 1:
            p = stats.ttest_ind_from_stats(sa["mean"], sa["std"], sa["n"], sb["mean"], sb["std"], sb["n"], equal_var=False).pvalue
            p = f"{p:.3g}"
        else:
            p = "n/a"
        show = lambda s: f"{s['mean']:.3f} ± {s['std']:.3f} (n = {s['n']})"
        print(f"| {a} | {b} | {name} | {show(sa)} | {show(sb)} | {p} |")
