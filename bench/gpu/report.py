"""Turns the JSON files of bench/gpu/run.sh into results/gpu/bench.md.

    python3 bench/gpu/report.py OUTDIR [OUTDIR ...] > results/gpu/bench.md

Training FLOPs per image: 3 × the forward (backward = 2 × forward) × 2 FLOPs per multiply-add,
the forward counted by dddit's DiT convention (`gflops_per_forward`, multiply-adds). MFU is
measured img/s × that over the matmul peak measured in the same call (`peak.json`) for the
precision's matmul type (f32, tf32, bf16).
"""

import glob
import json
import os
import sys


def load(dirs):
    runs = {}
    for d in dirs:
        for p in glob.glob(os.path.join(d, "*.json")):
            runs[os.path.basename(p)[:-5]] = json.load(open(p))
        for p in glob.glob(os.path.join(d, "gpu.csv")) + glob.glob(os.path.join(d, "torch.txt")):
            runs[os.path.basename(p)] = open(p).read().strip()
    return runs


def med(entry):
    return entry["time"]["median_ms"] if entry else None


def fmt(v, spec=".1f"):
    return "—" if v is None else format(v, spec)


def main():
    runs = load(sys.argv[1:])
    peak = runs.get("peak", {}).get("matmul_tflops", {})
    print("# GPU benchmark: dddit (LibTorch-CUDA) against PyTorch, same card, same call\n")
    print("Produced by `bench/gpu/run.sh` (dddit built by `scripts/build-gpu.sh`), tables by")
    print("`python3 bench/gpu/report.py <out dirs>`; raw JSON and logs in `results/gpu/raw/`.\n")
    if "gpu.csv" in runs:
        print("Card (nvidia-smi):\n\n```\n" + runs["gpu.csv"] + "\n```\n")
    if "torch.txt" in runs:
        print(f"PyTorch: {runs['torch.txt']}.\n")
    if peak:
        print("Matmul peak measured in the same call (8192² × 8192², best of 20): " + ", ".join(f"{k} {v:.0f} TFLOP/s" for k, v in peak.items()) + ".\n")
    print("Inputs 32×32×4 (latent-sized), 1000 classes, learned σ; batch 256 for training and sampling. dddit's")
    print("training step is `Trainer::step` (host batch upload, forward, MSE + VB loss, backward, gradient norm,")
    print("AdamW, EMA); PyTorch's is the official DiT loop (same work without the norm). Sampling: one DDIM")
    print("trajectory of 10 steps, no guidance. Times are medians of 10 steps after 3 warm-ups (sampling: 2")
    print("trajectories after 1). Precisions: dddit `bf16` is pure bf16 (weights and AdamW state too, burn")
    print("has no autocast); PyTorch is run both pure (`bf16-pure`) and with autocast (f32 weights).\n")
    for tag, name in (("DiTS2", "DiT-S/2"), ("DiTB2", "DiT-B/2")):
        dd = {p: runs.get(f"dddit-{tag}-{p}") for p in ("f32", "tf32", "bf16")}
        if not any(dd.values()):
            continue
        gf = next(v for v in dd.values() if v)["gflops_per_forward"]
        train_flops = 3 * gf * 2 * 1e9
        print(f"## {name} ({gf:.2f} GFLOPs per forward, DiT convention)\n")
        print("| precision | dddit ms/step | dddit img/s | dddit MFU | PyTorch eager ms | eager img/s | dddit / eager | torch.compile ms | dddit / compile |")
        print("|---|---|---|---|---|---|---|---|---|")
        rows = [("f32", "f32", "f32", None, "f32"), ("tf32", "tf32", "tf32", "tf32", "tf32"),
                ("bf16 (dddit pure) vs PyTorch pure", "bf16", "bf16-pure", None, "bf16"),
                ("bf16 (dddit pure) vs PyTorch autocast", "bf16", "bf16-autocast", "bf16-autocast", "bf16")]
        for label, dp, tp, cp, pk in rows:
            d = dd[dp]["train"][0] if dd[dp] and dd[dp]["train"] else None
            e = runs.get(f"torch-eager-{tag}-{tp}", {}).get("train")
            c = runs.get(f"torch-compile-{tag}-{cp}", {}).get("train") if cp else None
            dms, ems, cms = med(d), med(e), med(c)
            mfu = (256 * 1e3 / dms) * train_flops / (peak[pk] * 1e12) if dms and pk in peak else None
            print(f"| {label} | {fmt(dms)} | {fmt(256e3 / dms if dms else None, '.0f')} | {fmt(mfu * 100 if mfu else None, '.1f')}% | {fmt(ems)} | {fmt(256e3 / ems if ems else None, '.0f')} | {fmt(ems / dms if dms and ems else None, '.2f')}× | {fmt(cms)} | {fmt(cms / dms if dms and cms else None, '.2f')}× |")
        print("\n`dddit / eager` is PyTorch's time over dddit's: above 1, dddit is faster.\n")
        print("| precision | dddit sampling img/s | PyTorch eager img/s | dddit / eager |")
        print("|---|---|---|---|")
        for label, dp, tp in (("f32", "f32", "f32"), ("tf32", "tf32", "tf32"), ("bf16 vs PyTorch pure", "bf16", "bf16-pure"), ("bf16 vs PyTorch autocast", "bf16", "bf16-autocast")):
            d = dd[dp]["sample"][0] if dd[dp] and dd[dp]["sample"] else None
            e = runs.get(f"torch-eager-{tag}-{tp}", {}).get("sample")
            di = d["time"]["img_per_s"] if d else None
            ei = e["time"]["img_per_s"] if e else None
            print(f"| {label} | {fmt(di)} | {fmt(ei)} | {fmt(di / ei if di and ei else None, '.2f')}× |")
        print()
    for p in ("f32", "bf16"):
        r = runs.get(f"dddit-routers-S2-{p}")
        if not r:
            continue
        print(f"## Router speed-ups, DiT-S/2, {p}, inference forward\n")
        print("Fixed routing decisions (`dddit_routers::fixtures`); speed-up = dense time / router time (median of 30, round-robin).")
        print("Targets: speed-up ≥ 0.85 × GFLOPs ratio at batch 64, ≥ 0.7 × at batch 1.\n")
        print("| router | batch | GFLOPs ratio | ms | speed-up | speed-up / ratio | target met |")
        print("|---|---|---|---|---|---|---|")
        for f in r["forward"]:
            q = f["speedup"] / f["gflops_ratio"]
            target = 0.85 if f["batch"] >= 64 else 0.7
            met = "—" if f["router"] == "dense" else ("yes" if q >= target else "**no**")
            print(f"| {f['label']} | {f['batch']} | {f['gflops_ratio']:.2f} | {f['time']['median_ms']:.3f} | {f['speedup']:.2f} | {q:.2f} | {met} |")
        print()


if __name__ == "__main__":
    main()
