#!/usr/bin/env python3
"""Turns bench/gpu/profile.sh's output into results/gpu/profile.md.

    python3 bench/gpu/profile_report.py OUTDIR [JOB=PLAIN_JSON ...] [--before DIR|TGZ] > results/gpu/profile.md

--before adds the training step of an earlier profile (a directory or a .tgz of one, e.g. the
committed results/gpu/profile-raw.tgz) as a column "dddit before", so one table shows what a
change did to the kernel count and GPU time by kind.

One repetition's kernels, without set-up and warm-up: where a job was profiled with 1 and 3
timed repetitions (NAME-r1.csv, NAME-r3.csv), the difference divided by 2; where only NAME-r1.csv
exists (what profile.sh writes now), its last repetition, found in the kernel sequence.
JOB=PLAIN_JSON names another call's plain timing for a job whose own is missing. Kernels are grouped by what they do, from
their names (cuBLAS/CUTLASS matrix products, attention, elementwise, reductions, copies and
indexing, optimiser).
"""
import csv
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

CATEGORIES = [
    ("attention (SDPA/flash)", r"flash|fmha|attention"),
    ("matmul (cuBLAS/CUTLASS)", r"gemm|cutlass|xmma|nvjet|cublas|splitKreduce|Kernel2"),
    ("softmax", r"softmax"),
    ("layer norm", r"layer_?norm"),
    ("optimiser (foreach/fused)", r"multi_tensor|foreach|fused_adam|FusedAdam|_amp_"),
    ("reduction", r"reduce"),
    ("copy / cat / index / gather / scatter", r"copy|CatArray|cat_|index|gather|scatter|take|put_|masked|nonzero|sort|radix|cub::"),
    ("random", r"curand|philox|random|normal_|uniform_|distribution"),
    ("elementwise", r"elementwise|vectorized|unrolled|pointwise|fill|where"),
]


def category(name):
    for label, pattern in CATEGORIES:
        if re.search(pattern, name, re.I):
            return label
    return "other"


def short(name, width=100):
    """A readable kernel name: the head without template arguments, plus the functors it was
    instantiated with (ATen's `MulFunctor`, `CUDAFunctor_add`, `direct_copy_kernel_cuda`, …)."""
    n = name.replace("(anonymous namespace)", "anon")
    n = n[5:] if n.startswith("void ") else n
    core = re.split(r"[<(]", n, maxsplit=1)[0]
    tags = re.findall(r"(\w*Functor(?:_\w+)?|\w+_kernel_cuda|\w+_kernel_impl|\w+Ops|softmax\w*|\w*[Nn]orm\w*)\b", n[len(core):])
    tags = [t for t in dict.fromkeys(tags) if t not in ("BinaryFunctor", "AUnaryFunctor", "BUnaryFunctor")][:3]
    strided = " (strided)" if "gpu_kernel_impl_nocast" in n and core.endswith("::elementwise_kernel") else ""
    scalar = " (tensor × scalar)" if "AUnaryFunctor" in n or "BUnaryFunctor" in n else ""
    text = core + (f" [{' · '.join(tags)}]" if tags else "") + strided + scalar
    return text if len(text) <= width else text[: width - 1] + "…"


def sequence(path):
    """[(kernel name, ns)] of one ncu CSV log, in launch order (empty where ncu wrote no table)."""
    lines = Path(path).read_text(errors="replace").splitlines()
    start = next((i for i, l in enumerate(lines) if l.startswith('"ID"')), None)
    if start is None:
        return []
    out = []
    for row in csv.DictReader(lines[start:]):
        if (row.get("ID") or "").isdigit():
            try:
                out.append((row["Kernel Name"], float(row.get("gpu__time_duration.sum", "").replace(",", ""))))
            except ValueError:
                pass
    return out


def last_rep(seq, window=64):
    """The last repetition of a run with two (warm-up + 1 timed): the earliest window of
    kernels that occurs exactly once more later, with about as many kernels after that second
    occurrence as between the two, starts the first and the second repetition; the second runs
    to the end. (A window inside one transformer block recurs in every block and is skipped.)"""
    names = [k for k, _ in seq]
    n = len(names)
    for i0 in range(0, n // 2):
        w = names[i0 : i0 + window]
        later = [i for i in range(i0 + window, n - window + 1) if names[i : i + window] == w]
        if len(later) == 1 and 0.8 <= (n - later[0]) / (later[0] - i0) <= 1.25:
            return {k: (c, t) for k, (c, t) in _count(seq[later[0] :]).items()}
    return None


def _count(seq):
    out = defaultdict(lambda: [0, 0.0])
    for k, t in seq:
        out[k][0] += 1
        out[k][1] += t
    return out


METHOD = {}
AGREE = []  # the last repetition of R1 against R3 − R1, where both exist


def one_rep(d, name):
    """Kernels of one repetition: (R3 − R1) / 2 per kernel name; where the R3 profile is missing
    or unfinished, the last repetition found in the R1 profile (`last_rep`)."""
    r1, r3 = d / f"{name}-r1.csv", d / f"{name}-r3.csv"
    seq1 = sequence(r1) if r1.exists() else []
    seq3 = sequence(r3) if r3.exists() else []
    if seq3:
        if not seq1:
            raise SystemExit(f"{r1}: no ncu CSV header (did ncu run?)")
        a, b = _count(seq1), _count(seq3)
        rep = {}
        for k in set(a) | set(b):
            c = (b.get(k, [0, 0])[0] - a.get(k, [0, 0])[0]) / 2
            t = (b.get(k, [0, 0.0])[1] - a.get(k, [0, 0.0])[1]) / 2
            if c > 0 or t > 0:
                rep[k] = (c, t)
        METHOD[name] = "R3 − R1"
        check = last_rep(seq1)
        if check:
            (n1, t1), (n2, t2) = totals(check), totals(rep)
            AGREE.append(f"`{name}` {n1:.0f} vs {n2:.0f} kernels, {t1:.2f} vs {t2:.2f} ms")
        return rep
    rep = last_rep(seq1) if seq1 else None
    METHOD[name] = "last repetition of R1" if rep else "none"
    return rep


def totals(rep):
    return sum(c for c, _ in rep.values()), sum(t for _, t in rep.values()) / 1e6


def by_category(rep):
    cat = defaultdict(lambda: [0.0, 0.0])
    for k, (c, t) in rep.items():
        x = cat[category(k)]
        x[0] += c
        x[1] += t / 1e6
    return cat


WALL_FROM = {}  # job name → a plain-timing JSON of another call (command-line NAME=FILE)
WALL_NOTES = []


def plain(d, name):
    p = d / f"{name}-plain.json"
    if not p.exists() and name in WALL_FROM:
        p = Path(WALL_FROM[name])
        WALL_NOTES.append(f"{name}: wall time from `{p}` (the profile call ran out of time before its own plain timing)")
    return json.loads(p.read_text()) if p.exists() else None


def open_dir(path):
    """A profile directory, unpacking a .tgz into a temporary one."""
    p = Path(path)
    if p.is_dir():
        return p
    import tarfile
    import tempfile

    t = Path(tempfile.mkdtemp(prefix="profile-before-"))
    with tarfile.open(p) as tf:
        tf.extractall(t, filter="data")
    return t


def main():
    args = sys.argv[1:]
    before = None
    if "--before" in args:
        i = args.index("--before")
        before = open_dir(args[i + 1])
        del args[i : i + 2]
    d = open_dir(args[0])
    for arg in args[1:]:
        k, v = arg.split("=", 1)
        WALL_FROM[k] = v
    gpu = (d / "gpu.txt").read_text().strip() if (d / "gpu.txt").exists() else "?"
    ncu = (d / "ncu-version.txt").read_text().strip() if (d / "ncu-version.txt").exists() else "?"
    print("# GPU kernel profile: where dddit's time goes (made for issue 8, re-made for issue 15's fused ops)\n")
    gpu = gpu.splitlines()[0] if gpu else gpu
    print(f"Card: {gpu}. Profiler: Nsight Compute ({ncu}), `--clock-control none`, one metric")
    print("(`gpu__time_duration.sum`, the kernel's time on the GPU). Made by")
    print("`bench/gpu/profile.sh dddit-gpu OUT` and `python3 bench/gpu/profile_report.py OUT`.")
    print("The tables show exactly one training step or one DDIM step, without set-up or warm-up:")
    print("the difference of a 1- and a 3-repetition profile, halved, or the last repetition of a")
    print("1-repetition profile (warm-up + 1), found in its kernel sequence (the footnote says which).")
    print("*Wall* is the median of 10 repetitions of the same command without the profiler, run")
    print("after it on the same card.")
    print("*GPU busy* = summed kernel time / wall time: what is left is time the card waits for the")
    print("host (launch overhead, host-side work, synchronisation).\n")

    # Training step.
    rows = {}
    for who in ("dddit", "torch"):
        name = f"train-{who}"
        rep = one_rep(d, name) if (d / f"{name}-r1.csv").exists() else None
        if not rep:
            continue
        p = plain(d, name)
        wall = None
        if p:
            t = p["train"][0]["time"] if isinstance(p["train"], list) else p["train"]["time"]
            wall = t["median_ms"]
        rows[who] = (rep, wall)
    if before is not None and (before / "train-dddit-r1.csv").exists():
        rep = one_rep(before, "train-dddit")
        p = plain(before, "train-dddit")
        wall = None
        if p:
            t = p["train"][0]["time"] if isinstance(p["train"], list) else p["train"]["time"]
            wall = t["median_ms"]
        if rep:
            rows = {"before": (rep, wall), **rows}
            METHOD["train-dddit (before)"] = METHOD.get("train-dddit", "?")
    if rows:
        print("## One training step: DiT-S/2, 32×32×4, batch 256, TF32\n")
        print("Forward, loss, backward, AdamW and EMA. PyTorch: `bench/torch_dit.py` (the official DiT")
        print("with SDPA attention, eager).\n")
        names = {"before": "dddit before", "dddit": "dddit (burn-tch)", "torch": "PyTorch eager"}
        whos = list(rows)
        print("| | " + " | ".join(names[w] for w in whos) + " |")
        print("|---|" + "---|" * len(whos))
        stats = {w: totals(rows[w][0]) for w in whos}
        print("| kernels per step | " + " | ".join(f"{stats[w][0]:.0f}" for w in whos) + " |")
        print("| GPU time per step (ms) | " + " | ".join(f"{stats[w][1]:.1f}" for w in whos) + " |")
        print("| wall time per step (ms) | " + " | ".join(f"{rows[w][1]:.1f}" if rows[w][1] else "—" for w in whos) + " |")
        print("| GPU busy | " + " | ".join(f"{stats[w][1] / rows[w][1]:.0%}" if rows[w][1] else "—" for w in whos) + " |")
        print()
        cats = {w: by_category(rows[w][0]) for w in whos}
        labels = [c for c, _ in CATEGORIES] + ["other"]
        print("GPU time per step by kind of kernel (ms, with the number of kernels):\n")
        print("| kind | " + " | ".join(names[w] for w in whos) + " |")
        print("|---|" + "---|" * len(whos))
        for c in labels:
            if any(c in cats[w] for w in whos):
                print(f"| {c} | " + " | ".join(f"{cats[w][c][1]:.2f} ({cats[w][c][0]:.0f})" if c in cats[w] else "—" for w in whos) + " |")
        print()
        for w in whos:
            rep = rows[w][0]
            top = sorted(rep.items(), key=lambda kv: -kv[1][1])[:15]
            print(f"Top kernels of {names[w]} by GPU time per step:\n")
            print("| kernel | calls | ms | kind |")
            print("|---|---|---|---|")
            for k, (c, t) in top:
                print(f"| `{short(k)}` | {c:.0f} | {t / 1e6:.2f} | {category(k)} |")
            print()

    # Router forward.
    fwd = []
    for b in (1, 64):
        for r in ("dense", "topk", "dynamic-width", "token-skip", "depth-budget"):
            name = f"fwd-{r}-b{b}"
            rep = one_rep(d, name) if (d / f"{name}-r1.csv").exists() else None
            if not rep:
                continue
            n, ms = totals(rep)
            p = plain(d, name)
            wall = gf = steps = None
            if p and p.get("sample"):
                s = p["sample"][0]
                steps = s["steps"]
                wall = s["time"]["median_ms"] / steps
                gf = s["gflops_per_image"]
            steps = steps or 2
            fwd.append((r, b, n / steps, ms / steps, wall, gf))
    if fwd:
        print("## One DDIM step of each router: DiT-S/2, f32, batch 1 and 64\n")
        print("The fixed routing decisions of the speed-up benchmark (`dddit_routers::fixtures`); a")
        print("2-step DDIM trajectory, per step. *Kernel speed-up* = dense GPU time / router GPU time:")
        print("the speed-up if launching cost nothing. *Wall speed-up* is what a user gets.\n")
        print("| router | batch | kernels | GPU ms | wall ms | GPU busy | GFLOPs ratio | kernel speed-up | wall speed-up |")
        print("|---|---|---|---|---|---|---|---|---|")
        dense = {b: (ms, wall, gf) for r, b, _, ms, wall, gf in fwd if r == "dense"}
        for r, b, n, ms, wall, gf in fwd:
            dms, dwall, dgf = dense.get(b, (None, None, None))
            ratio = f"{dgf / gf:.2f}" if gf and dgf else "—"
            ks = f"{dms / ms:.2f}" if dms else "—"
            ws = f"{dwall / wall:.2f}" if dwall and wall else "—"
            busy = f"{ms / wall:.0%}" if wall else "—"
            wtxt = f"{wall:.2f}" if wall else "—"
            print(f"| {r} | {b} | {n:.0f} | {ms:.2f} | {wtxt} | {busy} | {ratio} | {ks} | {ws} |")
        print()


def footer():
    print("How each job's single repetition was found: " + ", ".join(f"`{k}` {v}" for k, v in METHOD.items()) + ".")
    if AGREE:
        print("\nThe last repetition of R1 against R3 − R1, where both exist: " + "; ".join(AGREE) + ".")
    for n in dict.fromkeys(WALL_NOTES):
        print(f"\n{n}.")


if __name__ == "__main__":
    main()
    footer()
