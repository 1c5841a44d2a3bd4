#!/usr/bin/env python3
"""Combine the alternating runs of bench/cpu/routers_ab.sh into one Markdown table.

    python3 bench/cpu/routers_ab.py OUT > results/bench/routers-ab/NAME/report.md

Per batch and router: the GFLOPs ratio, and the speed-up / GFLOPs ratio of commit A and of
commit B as mean ± std over the runs (each run's speed-up is against dense in the same run, so
the machine's drift between runs cancels), B − A with its 95 % CI (Welch), Welch's p and that p
adjusted by Holm over every comparison of both batches. The peak training memory is
deterministic; it is shown once per commit (the first run's).
"""
import re
import sys
from pathlib import Path
from statistics import mean, stdev

from scipy import stats

# B's label → A's, for a case whose label changed between the commits but not what it runs:
# before issue 19 (6ff325b) dropless token choice was topk's only mode and had no suffix.
ALIASES = {"topk (E=4, k=1, token, dropless)": "topk (E=4, k=1, token)"}


def parse(path):
    """{section: {router: [columns as strings]}} of one run's Markdown."""
    out, sec = {}, None
    for line in Path(path).read_text().splitlines():
        m = re.match(r"## batch (\d+)", line)
        if m:
            sec = f"batch {m.group(1)}"
            continue
        if line.startswith("## Peak heap memory"):
            sec = "memory"
            continue
        if sec and line.startswith("| ") and not line.startswith("| router") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            out.setdefault(sec, {})[cells[0]] = cells[1:]
    return out


def name_in_a(router, table):
    """The label under which A's `table` (one section of a run) holds B's `router`, if any."""
    for name in (router, ALIASES.get(router)):
        if name in table:
            return name
    return None


def fmt(xs):
    return f"{mean(xs):.2f} ± {stdev(xs):.2f}" if len(xs) > 1 else f"{xs[0]:.2f}"


def main():
    out = Path(sys.argv[1])
    commits = dict(line.split(None, 1) for line in (out / "commits.txt").read_text().splitlines())
    runs = {t: [parse(p) for p in sorted(out.glob(f"{t}-*.md"), key=lambda p: int(p.stem.split("-")[1]))] for t in "AB"}
    n = {t: len(r) for t, r in runs.items()}
    a_sha, b_sha = commits["A"].split()[0], commits["B"].split()[0]
    # routers_ab.sh notes HARNESS and DDDIT_BENCH_ROUTERS after the date; the command shows them.
    env = ""
    for key, var in (("harness", "HARNESS"), ("routers", "DDDIT_BENCH_ROUTERS")):
        m = re.search(rf"\({key}: ([^)]*)\)", commits["B"])
        if m:
            env += f"{var}={m.group(1)} "
    # machine.txt gets the machine's lines and a start time per invocation of routers_ab.sh.
    lines = [re.sub(r"\s+", " ", x).strip() for x in (out / "machine.txt").read_text().splitlines()]
    starts = [x for x in lines if re.match(r"\d{4}-\d\d-\d\dT", x)]
    machine = list(dict.fromkeys(x for x in lines if x and x not in starts))
    machine.append("runs started " + ", ".join(starts))
    print(f"# Router benchmark, `{a_sha}` (A) against `{b_sha}` (B), alternating runs\n")
    print(f"Command: `{env}bench/cpu/routers_ab.sh {a_sha} {b_sha} OUT {n['A']}`, then "
          "`python3 bench/cpu/routers_ab.py OUT`. Each run is `cargo bench -p dddit-routers --bench routers` "
          f"(`crates/dddit-routers/benches/routers.rs`: DiT-S/4 on 32×32×1, flex, inference forward, median of "
          f"round-robin timed passes); the runs alternate A, B, A, B, … ({n['A']} of A, {n['B']} of B) on one machine: "
          + "; ".join(machine) + ".\n")
    print("*A*, *B*: speed-up / GFLOPs ratio (speed-up = dense's time / the router's, in the same run), mean ± std over "
          "the runs. *B − A*: difference of the means with its 95 % confidence interval and Welch's p; "
          "*p (Holm)*: p adjusted for the number of comparisons in both tables (Holm's step-down); a verdict needs "
          "p (Holm) < 0.05, \"no difference detected\" otherwise.\n")
    # Every row's values first: the p-values are adjusted together (Holm) before printing.
    tables = {}
    for sec in ("batch 1", "batch 64"):
        rows = []
        for router in runs["B"][0][sec]:
            if router == "dense":
                continue
            name = {"A": name_in_a(router, runs["A"][0][sec]), "B": router}
            vals = {t: [float(r[sec][name[t]][4]) for r in runs[t] if name[t] in r.get(sec, {})] for t in "AB"}
            ratios = {t: runs[t][0][sec][name[t]][1] if vals[t] else "—" for t in "AB"}
            label = router if name["A"] in (router, None) else f"{router} (A: {name['A']})"
            rows.append({"label": label, "ratios": ratios, "a": vals["A"], "b": vals["B"]})
        matched = {name_in_a(r, runs["A"][0][sec]) for r in runs["B"][0][sec]}
        for router in runs["A"][0][sec]:
            if router not in matched:
                a = [float(r[sec][router][4]) for r in runs["A"]]
                rows.append({"label": router, "ratios": {"A": runs["A"][0][sec][router][1], "B": "—"}, "a": a, "b": []})
        tables[sec] = rows
    tested = [r for rows in tables.values() for r in rows if len(r["a"]) > 1 and len(r["b"]) > 1]
    for r in tested:
        t = stats.ttest_ind(r["b"], r["a"], equal_var=False)
        r["t"], r["p"] = t, t.pvalue
    # Holm's step-down adjustment over every comparison of both batches.
    m = len(tested)
    running = 0.0
    for i, r in enumerate(sorted(tested, key=lambda r: r["p"])):
        running = max(running, min(1.0, (m - i) * r["p"]))
        r["holm"] = running
    for sec, rows in tables.items():
        print(f"## {sec}\n")
        print("| router | GFLOPs ratio (A / B) | A | B | B − A [95 % CI] | p | p (Holm) | verdict |")
        print("|---|---|---|---|---|---|---|---|")
        for r in rows:
            a, b, ratios = r["a"], r["b"], r["ratios"]
            head = f"| {r['label']} | {ratios['A']} / {ratios['B']} |"
            if not a:
                print(f"{head} — | {fmt(b)} | new in B | | | |")
            elif not b:
                print(f"{head} {fmt(a)} | — | not in B | | | |")
            elif "p" in r:
                d = mean(b) - mean(a)
                ci = r["t"].confidence_interval(0.95)
                if r["holm"] < 0.05:
                    verdict = "B faster" if d > 0 else "B slower"
                elif r["p"] < 0.05:
                    verdict = "p < 0.05 alone, not after Holm"
                else:
                    verdict = "no difference detected"
                print(f"{head} {fmt(a)} | {fmt(b)} | {d:+.2f} [{ci.low:+.2f}, {ci.high:+.2f}] | {r['p']:.3f} | "
                      f"{r['holm']:.3f} | {verdict} |")
            else:
                print(f"{head} {fmt(a)} | {fmt(b)} | {mean(b) - mean(a):+.2f} | | | one run |")
        dense = {t: [float(x[sec]["dense"][2]) for x in runs[t]] for t in "AB"}
        print(f"\nDense's ms per forward (the machine's speed over the runs): A {', '.join(f'{x:.1f}' for x in dense['A'])}; "
              f"B {', '.join(f'{x:.1f}' for x in dense['B'])}.\n")
    print("## Peak heap memory of one training step (batch 16), MiB (vs dense)\n")
    print("| router | A | B |")
    print("|---|---|---|")
    for router, cells in runs["B"][0]["memory"].items():
        a = runs["A"][0]["memory"].get(name_in_a(router, runs["A"][0]["memory"]))
        print(f"| {router} | {f'{a[0]} ({a[1]})' if a else '—'} | {cells[0]} ({cells[1]}) |")


if __name__ == "__main__":
    main()
