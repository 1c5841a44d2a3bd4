"""results/bench/cpu.md from the output directory of bench/cpu/run.sh.

    python3 bench/cpu/report.py [--json results/bench/cpu.json] OUTDIR [BEFORE_OUTDIR] > results/bench/cpu.md

With BEFORE_OUTDIR (an earlier run of the same script), a before/after table of dddit's times
is added.

dddit numbers are criterion's median estimates (target/criterion/<group>/<router>/new/
estimates.json, copied to OUTDIR/criterion); PyTorch's are the medians in OUTDIR/torch.json
(and OUTDIR/torch-compile.json, if a run left one).

`--json PATH` writes a list of objects, one per backend, router and work ("train" or
"sample"), in the schema of bench/gpu/report.py's bench.json: {model, precision: "f32",
backend: "flex" | "ndarray" | "tch-cpu", work, dddit_ms, torch_eager_ms, torch_compile_ms,
ratio_eager, ratio_compile} (null where a number does not exist), plus router, batch, steps
(sampling), cpu (lscpu's model name) and the PyTorch version. Ratios are PyTorch's time over
dddit's; the dynamic-width objects are compared with dense PyTorch, as in the table.
"""

import argparse
import json
import os


def crit(out, group, dev, router):
    p = os.path.join(out, "criterion", f"{group}_{dev}", router, "new", "estimates.json")
    if not os.path.exists(p):
        return None
    return json.load(open(p))["median"]["point_estimate"] / 1e6  # ns -> ms


def cpu_name(machine):
    """lscpu's "Model name" from machine.txt."""
    for line in machine.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return None


def rows(out, torch, torch_compile, cpu):
    """The objects of --json, one per backend, router and work that criterion measured."""
    res = []
    for dev in ("flex", "ndarray", "tch-cpu"):
        for r in ("dense", "dynamic-width"):
            for work, group in (("train", "train"), ("sample", "sample")):
                d = crit(out, group, dev, r)
                if d is None:
                    continue
                e = torch[work]["time"]["median_ms"] if work in torch else None
                c = torch_compile[work]["time"]["median_ms"] if torch_compile and work in torch_compile else None
                res.append({
                    "model": torch["model"], "precision": "f32", "backend": dev, "work": work,
                    "dddit_ms": d, "torch_eager_ms": e, "torch_compile_ms": c,
                    "ratio_eager": e / d if e else None, "ratio_compile": c / d if c else None,
                    "router": r, "batch": torch[work]["batch"] if work in torch else None,
                    "steps": torch["sample"]["steps"] if work == "sample" and "sample" in torch else None,
                    "cpu": cpu, "threads": torch.get("threads"), "torch": torch.get("torch"),
                })
    return res


def main():
    ap = argparse.ArgumentParser(description="results/bench/cpu.md from the output directory of bench/cpu/run.sh")
    ap.add_argument("out", help="bench/cpu/run.sh's output directory")
    ap.add_argument("before", nargs="?", help="an earlier run's output directory")
    ap.add_argument("--json", help="also write the rows as a JSON list here")
    a = ap.parse_args()
    out = a.out
    torch = json.load(open(os.path.join(out, "torch.json")))
    tc = os.path.join(out, "torch-compile.json")
    torch_compile = json.load(open(tc)) if os.path.exists(tc) else None
    machine = open(os.path.join(out, "machine.txt")).read().strip()
    cpu = cpu_name(machine)
    B = torch["train"]["batch"]
    steps = torch["sample"]["steps"]
    t_train = torch["train"]["time"]["median_ms"]
    t_sample = torch["sample"]["time"]["median_ms"]
    print("# CPU benchmark: dddit against PyTorch, DiT-S/4 on 32×32×1, batch 32\n")
    if cpu:
        print(f"CPU: {cpu}.\n")
    print("Command: `LIBTORCH=… PYTHON=… bench/cpu/run.sh OUT && python3 bench/cpu/report.py OUT`")
    print("(dddit: criterion, `crates/dddit-eval/benches/speed.rs`; PyTorch: `bench/torch_dit.py`, same DiT,")
    print("initialisation scheme, batch and work; both on the same machine in one run).\n")
    print("Machine:\n\n```\n" + machine + "\n```\n")
    print(f"PyTorch {torch['torch']} eager, f32, {torch['threads']} threads, SDPA attention.\n")
    print(f"A training step: host batch → forward → MSE + VB loss → backward → AdamW → EMA (dddit adds the")
    print(f"gradient-norm finiteness check). Sampling: one DDIM trajectory of {steps} steps, no guidance, {B} images.")
    print("`dynamic-width` has half its heads and MLP groups switched off at inference (fixed gates,")
    print("`dddit_routers::fixtures`); in training its gates are straight-through, so everything runs.\n")
    print("| backend | router | train ms/step | train steps/s | vs PyTorch | sampling ms | sampling img/s | vs PyTorch |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| PyTorch eager | dense | {t_train:.0f} | {1e3 / t_train:.3f} | 1.00 | {t_sample:.0f} | {B * 1e3 / t_sample:.1f} | 1.00 |")
    for dev in ("flex", "ndarray", "tch-cpu"):
        for r in ("dense", "dynamic-width"):
            tr = crit(out, "train", dev, r)
            sa = crit(out, "sample", dev, r)
            if tr is None and sa is None:
                continue
            f = lambda v, s: "—" if v is None else format(v, s)
            print(f"| {dev} | {r} | {f(tr, '.0f')} | {f(1e3 / tr if tr else None, '.3f')} | {f(t_train / tr if tr else None, '.2f')} | {f(sa, '.0f')} | {f(B * 1e3 / sa if sa else None, '.1f')} | {f(t_sample / sa if sa else None, '.2f')} |")
    print("\n`vs PyTorch` is PyTorch's dense time over dddit's (1.00 = as fast; the dynamic-width rows are")
    print("compared with dense PyTorch, so at sampling they include the router's saving).")
    if a.json:
        with open(a.json + ".tmp", "w") as f:
            json.dump(rows(out, torch, torch_compile, cpu), f, indent=1)
            f.write("\n")
        os.replace(a.json + ".tmp", a.json)
    if a.before:
        before = a.before
        tb = json.load(open(os.path.join(before, "torch.json")))
        print(f"\n## Before and after (`{before}` → `{out}`)\n")
        print(f"PyTorch in the two runs: training {tb['train']['time']['median_ms']:.0f} → {t_train:.0f} ms, sampling {tb['sample']['time']['median_ms']:.0f} → {t_sample:.0f} ms.\n")
        print("| backend | router | train ms before | after | speed-up | sampling ms before | after | speed-up |")
        print("|---|---|---|---|---|---|---|---|")
        for dev in ("flex", "ndarray", "tch-cpu"):
            for r in ("dense", "dynamic-width"):
                v = [crit(d, g, dev, r) for g in ("train", "sample") for d in (before, out)]
                if None in v:
                    continue
                print(f"| {dev} | {r} | {v[0]:.0f} | {v[1]:.0f} | {v[0] / v[1]:.2f}× | {v[2]:.0f} | {v[3]:.0f} | {v[2] / v[3]:.2f}× |")


if __name__ == "__main__":
    main()
