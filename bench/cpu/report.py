"""results/bench/cpu.md from the output directory of bench/cpu/run.sh.

    python3 bench/cpu/report.py OUTDIR [BEFORE_OUTDIR] > results/bench/cpu.md

With BEFORE_OUTDIR (an earlier run of the same script), a before/after table of dddit's times
is added.

dddit numbers are criterion's median estimates (target/criterion/<group>/<router>/new/
estimates.json, copied to OUTDIR/criterion); PyTorch's are the medians in OUTDIR/torch.json.
"""

import json
import os
import sys


def crit(out, group, dev, router):
    p = os.path.join(out, "criterion", f"{group}_{dev}", router, "new", "estimates.json")
    if not os.path.exists(p):
        return None
    return json.load(open(p))["median"]["point_estimate"] / 1e6  # ns -> ms


def main():
    out = sys.argv[1]
    torch = json.load(open(os.path.join(out, "torch.json")))
    machine = open(os.path.join(out, "machine.txt")).read().strip()
    B = torch["train"]["batch"]
    steps = torch["sample"]["steps"]
    t_train = torch["train"]["time"]["median_ms"]
    t_sample = torch["sample"]["time"]["median_ms"]
    print("# CPU benchmark: dddit against PyTorch, DiT-S/4 on 32×32×1, batch 32\n")
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
    if len(sys.argv) > 2:
        before = sys.argv[2]
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
