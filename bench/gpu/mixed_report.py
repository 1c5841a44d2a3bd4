"""bf16-mixed against tf32 training loss: plot and statistics from bench/gpu/mixed.sh's output.

    python3 bench/gpu/mixed_report.py RAWDIR OUTPREFIX

RAWDIR holds <precision>-seed<k>.jsonl (dddit metrics.jsonl, one line per step). Writes
OUTPREFIX.png (loss against step, a 50-step moving average per run, mean over seeds bold) and
OUTPREFIX.md: per seed and precision the mean diffusion loss over the last 200 steps, mean ± std
over seeds, the 95 % CI of the difference and Welch's t-test (two-sided) against tf32.
"""

import glob
import json
import math
import os
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from scipy import stats  # noqa: E402


def load(raw):
    runs = {}
    for p in sorted(glob.glob(os.path.join(raw, "*-seed*.jsonl"))):
        name = os.path.basename(p)[: -len(".jsonl")]
        prec, seed = name.rsplit("-seed", 1)
        steps, loss = [], []
        for line in open(p):
            r = json.loads(line)
            terms = dict(r["terms"])
            steps.append(r["step"])
            loss.append(terms.get("diffusion", r["loss"]))
        runs.setdefault(prec, {})[int(seed)] = (steps, loss)
    return runs


def smooth(v, k=50):
    out, acc = [], 0.0
    for i, x in enumerate(v):
        acc += x
        if i >= k:
            acc -= v[i - k]
        out.append(acc / min(i + 1, k))
    return out


def main():
    raw, prefix = sys.argv[1], sys.argv[2]
    runs = load(raw)
    # Runs cut off by a time limit reach different steps: compare all over the steps every run
    # reached, so that a faster precision is not credited with more training.
    common = min(len(loss) for seeds in runs.values() for _, loss in seeds.values())
    runs = {p: {k: (st[:common], lo[:common]) for k, (st, lo) in seeds.items()} for p, seeds in runs.items()}
    colors = {"tf32": "tab:blue", "bf16-mixed": "tab:orange", "f32": "tab:green"}
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    finals = {}
    for prec, seeds in runs.items():
        curves = []
        for seed, (steps, loss) in sorted(seeds.items()):
            s = smooth(loss)
            curves.append(s)
            ax.plot(steps, s, color=colors.get(prec), alpha=0.35, lw=0.8)
            finals.setdefault(prec, []).append(statistics.mean(loss[-200:]))
        n = min(len(c) for c in curves)
        mean = [statistics.mean(c[i] for c in curves) for i in range(n)]
        ax.plot(list(range(n)), mean, color=colors.get(prec), lw=2, label=f"{prec} (mean of {len(curves)} seeds)")
    ax.set_xlabel("step")
    ax.set_ylabel("diffusion loss (MSE + VB), 50-step moving average")
    ax.set_ylim(bottom=min(min(v) for v in finals.values()) * 0.9, top=max(max(v) for v in finals.values()) * 2.0)
    ax.set_title("DiT-S/4, Fashion-MNIST 28×28, batch 256: bf16-mixed vs tf32")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(prefix + ".png")
    lines = [f"Steps compared: 0–{common - 1} (the steps every run reached).", "",
             f"| precision | seeds | final loss per seed (mean of steps {common - 200}–{common - 1}) | mean ± std |", "|---|---|---|---|"]
    for prec, v in finals.items():
        sd = statistics.stdev(v) if len(v) > 1 else float("nan")
        lines.append(f"| {prec} | {len(v)} | {', '.join(f'{x:.5f}' for x in v)} | {statistics.mean(v):.5f} ± {sd:.5f} |")
    if "tf32" in finals and "bf16-mixed" in finals:
        a, b = finals["bf16-mixed"], finals["tf32"]
        t = stats.ttest_ind(a, b, equal_var=False)
        d = statistics.mean(a) - statistics.mean(b)
        va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
        se = math.sqrt(va + vb)
        df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1)) if se > 0 else float("nan")
        tc = stats.t.ppf(0.975, df) if se > 0 else float("nan")
        lines.append("")
        lines.append(
            f"bf16-mixed − tf32: {d:+.5f} (95 % CI {d - tc * se:+.5f} … {d + tc * se:+.5f}, Welch df {df:.1f}); "
            f"Welch's t = {t.statistic:.2f}, p = {t.pvalue:.3f}."
        )
    open(prefix + ".md", "w").write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
