"""Turns the JSON files of bench/gpu/run.sh into results/gpu/bench.md (and bench.json).

    python3 bench/gpu/report.py [--json results/gpu/bench.json] [--before OLD ...] OUT [OUT ...] > results/gpu/bench.md

OUT: directories written by run.sh (one per PART, or one for `all`), or their .tgz archives.
Later directories override earlier ones for the same measurement. `--before`: the directories
of an earlier run; a table of dddit's times before → after is added where both exist.

Rows pair a dddit precision with the PyTorch one doing the same arithmetic: f32 / f32, tf32 /
tf32, bf16-mixed / bf16-autocast (f32 master weights, bf16 matmuls), and for older runs dddit's
pure bf16 against PyTorch pure and autocast. Ratios are PyTorch's time over dddit's
(`ratio_eager = torch_eager_ms / dddit_ms`, `ratio_compile = torch_compile_ms / dddit_ms`):
above 1, dddit is faster. They are left out (null) where the two ran different batches.

FLOPs per image: the forward counted by dddit's DiT convention (`gflops_per_forward`,
multiply-adds) × 2 FLOPs per multiply-add; training 3 × that (backward = 2 × forward), sampling
steps × that. MFU is measured img/s × FLOPs per image over the matmul peak measured on the same
card (`peak.json`) for the precision's matmul type: f32 → f32, tf32 → tf32, bf16-mixed, bf16,
bf16-autocast and bf16-pure → bf16.

`--json PATH` writes a list of objects, one per row and work ("train" or "sample"):
{model, precision, backend: "tch-cuda", work, dddit_ms, torch_eager_ms, torch_compile_ms,
ratio_eager, ratio_compile} (null where a number does not exist), plus torch_precision, batch,
steps (sampling), img/s, MFUs, card, card memory peaks and the PyTorch version.
"""

import argparse
import atexit
import glob
import json
import os
import re
import shutil
import sys
import tarfile
import tempfile

# DiT paper, Table 4 (GFLOPs, multiply-adds, at 32×32×4), for runs without a dddit JSON.
PAPER_GFLOPS = {"DiT-S/2": 6.06, "DiT-B/2": 23.01, "DiT-L/2": 80.71, "DiT-XL/2": 118.64,
                "DiT-S/4": 1.41, "DiT-B/4": 5.56, "DiT-L/4": 19.70, "DiT-XL/4": 29.05}
PEAK_KEY = {"f32": "f32", "tf32": "tf32", "bf16": "bf16", "bf16-mixed": "bf16", "bf16-autocast": "bf16", "bf16-pure": "bf16"}
# (label, dddit precision, PyTorch precision), in table order.
ROWS = [
    ("f32", "f32", "f32"),
    ("tf32", "tf32", "tf32"),
    ("bf16-mixed vs PyTorch bf16-autocast", "bf16-mixed", "bf16-autocast"),
    ("bf16 (dddit pure) vs PyTorch pure", "bf16", "bf16-pure"),
    ("bf16 (dddit pure) vs PyTorch autocast", "bf16", "bf16-autocast"),
]
SIZE_ORDER = {"S": 0, "B": 1, "L": 2, "XL": 3}
NAME = re.compile(r"^(dddit|torch-eager|torch-compile)-(DiT([A-Z]+)(\d+))-(.+)$")


def unpack(path):
    """A directory as given, or a .tgz / .tar.gz archive of one unpacked into a temporary one."""
    if os.path.isdir(path):
        return path
    if path.endswith((".tgz", ".tar.gz", ".tar")) and os.path.isfile(path):
        d = tempfile.mkdtemp(prefix="gpu-bench-")
        atexit.register(shutil.rmtree, d, True)
        with tarfile.open(path) as t:
            members = [m for m in t.getmembers() if m.isfile() and not os.path.isabs(m.name) and ".." not in m.name.split("/")]
            t.extractall(d, members=members)
        # An archive of a directory (tar -C OUT .) or of its parent (tar DIR): find the JSONs.
        for root, _, files in os.walk(d):
            if any(f.endswith(".json") for f in files):
                return root
        return d
    sys.exit(f"report.py: {path} is neither a directory nor a .tgz archive")


def card_name(csv):
    lines = [l for l in csv.splitlines() if l.strip()]
    return lines[1].split(",")[0].strip() if len(lines) > 1 else None


class Runs:
    """The measurements of a set of run.sh directories, later directories winning."""

    def __init__(self, paths):
        self.dirs = [unpack(p) for p in paths]
        self.paths = paths
        self.runs, self.card_of, self.mem = {}, {}, {}
        self.cards, self.torch_txt, self.peaks = [], [], {}
        for d in self.dirs:
            csv = open(os.path.join(d, "gpu.csv")).read().strip() if os.path.exists(os.path.join(d, "gpu.csv")) else None
            card = card_name(csv) if csv else None
            if csv and csv not in [c for c, _ in self.cards]:
                self.cards.append((csv, card))
            if os.path.exists(os.path.join(d, "torch.txt")):
                t = open(os.path.join(d, "torch.txt")).read().strip()
                if t not in self.torch_txt:
                    self.torch_txt.append(t)
            for p in sorted(glob.glob(os.path.join(d, "*.json"))):
                name = os.path.basename(p)[:-5]
                try:
                    data = json.load(open(p))
                except (OSError, ValueError) as e:
                    print(f"report.py: skipping {p}: {e}", file=sys.stderr)
                    continue
                c = card or (data.get("gpu") if isinstance(data, dict) else None)
                if name == "peak":
                    self.peaks[c] = data.get("matmul_tflops", {})
                    continue
                self.runs[name] = data
                self.card_of[name] = c
            for p in glob.glob(os.path.join(d, "*.mem")):
                vals = [int(v) for v in open(p).read().split() if v.strip().isdigit()]
                if vals:
                    self.mem[os.path.basename(p)[:-4]] = max(vals) / 1024
        self.card = self.cards[-1][1] if self.cards else None

    def get(self, kind, tag, prec):
        return self.runs.get(f"{kind}-{tag}-{prec}")

    def models(self):
        tags = {}
        for name, data in self.runs.items():
            m = NAME.match(name)
            if m and m.group(2) not in tags:
                tags[m.group(2)] = (SIZE_ORDER.get(m.group(3), 9), int(m.group(4)), data.get("model") or f"DiT-{m.group(3)}/{m.group(4)}")
        return [(tag, name) for tag, (_, _, name) in sorted(tags.items(), key=lambda kv: kv[1][:2])]

    def peak(self, name):
        """The matmul peaks measured on the card `name` ran on (any card's if none is known)."""
        c = self.card_of.get(name)
        if c in self.peaks:
            return self.peaks[c]
        if c is None and len(self.peaks) == 1:
            return next(iter(self.peaks.values()))
        return {}


def entry(data, work, kind):
    """(median ms, batch, steps, sampled reps, the timing) of one work of one JSON, or Nones."""
    if not data:
        return None
    w = data.get(work)
    if kind == "dddit":
        if not w:
            return None
        w = next((x for x in w if x.get("router") == "dense"), w[0])
    if not w:
        return None
    return {"ms": w["time"]["median_ms"], "batch": w["batch"], "steps": w.get("steps"), "n": len(w["time"].get("all_ms", []))}


def fmt(v, spec=".1f", suffix=""):
    return "—" if v is None else format(v, spec) + suffix


def ratio(t, d):
    if t and d and t["batch"] == d["batch"]:
        return t["ms"] / d["ms"]
    return None


def mfu(e, flops_per_image, peak, prec):
    k = PEAK_KEY.get(prec)
    if not e or not flops_per_image or k not in peak:
        return None
    return (e["batch"] * 1e3 / e["ms"]) * flops_per_image / (peak[k] * 1e12)


def rows_for(runs, tag):
    """The rows of `tag` that have data: every row with a dddit run, plus, for a PyTorch precision
    that no such row covers, the first row naming it (its dddit side missing, e.g. failed)."""
    cand = [(label, dp, tp, runs.get("dddit", tag, dp)) for label, dp, tp in ROWS]
    keep = [r for r in cand if r[3]]
    covered = {r[2] for r in keep}
    for r in cand:
        if not r[3] and r[2] not in covered and (runs.get("torch-eager", tag, r[2]) or runs.get("torch-compile", tag, r[2])):
            keep.append(r)
            covered.add(r[2])
    return sorted(keep, key=lambda r: ROWS.index((r[0], r[1], r[2])))


def measure(runs, tag, model):
    """Every (row, work) of one model as a dict: the markdown tables and bench.json both use it."""
    out = []
    dd_any = next((runs.get("dddit", tag, dp) for _, dp, _ in ROWS if runs.get("dddit", tag, dp)), None)
    gf = dd_any["gflops_per_forward"] if dd_any else PAPER_GFLOPS.get(model)
    for label, dp, tp, dd in rows_for(runs, tag):
        ename, cname, dname = f"torch-eager-{tag}-{tp}", f"torch-compile-{tag}-{tp}", f"dddit-{tag}-{dp}"
        eager, comp = runs.runs.get(ename), runs.runs.get(cname)
        for work in ("train", "sample"):
            d, e, c = entry(dd, work, "dddit"), entry(eager, work, "torch"), entry(comp, work, "torch")
            if not (d or e or c):
                continue
            steps = next((x["steps"] for x in (d, e, c) if x and x["steps"]), None)
            per_image = None
            if gf:
                per_image = gf * 2e9 * (3 if work == "train" else (steps or 0))
            batches = {x["batch"] for x in (d, e, c) if x}
            card = runs.card_of.get(dname) or runs.card_of.get(ename) or runs.card_of.get(cname)
            cards = {runs.card_of.get(n) for n, x in ((dname, d), (ename, e), (cname, c)) if x} - {None}
            out.append({
                "model": model, "precision": dp, "torch_precision": tp, "label": label, "backend": "tch-cuda", "work": work,
                "batch": d["batch"] if d else (e or c)["batch"], "batches_differ": len(batches) > 1, "steps": steps if work == "sample" else None,
                "dddit_ms": d["ms"] if d else None, "torch_eager_ms": e["ms"] if e else None, "torch_compile_ms": c["ms"] if c else None,
                "ratio_eager": ratio(e, d), "ratio_compile": ratio(c, d),
                "dddit_img_per_s": d["batch"] * 1e3 / d["ms"] if d else None,
                "torch_eager_img_per_s": e["batch"] * 1e3 / e["ms"] if e else None,
                "torch_compile_img_per_s": c["batch"] * 1e3 / c["ms"] if c else None,
                "mfu": mfu(d, per_image, runs.peak(dname), dp),
                "torch_eager_mfu": mfu(e, per_image, runs.peak(ename), tp),
                "torch_compile_mfu": mfu(c, per_image, runs.peak(cname), tp),
                "gflops_per_forward": gf, "card": card, "cards_differ": len(cards) > 1,
                "torch": (eager or comp or {}).get("torch"), "torch_adamw": (eager or {}).get("adamw") if work == "train" else None,
                "dddit_card_mem_peak_gib": runs.mem.get(dname), "torch_eager_card_mem_peak_gib": runs.mem.get(ename),
                "torch_compile_card_mem_peak_gib": runs.mem.get(cname),
                "timing": {"warmup": (dd or eager or comp or {}).get("warmup"), "reps": (dd or eager or comp or {}).get("reps"),
                           "sample_reps": (d or e or {"n": None})["n"] if work == "sample" else None},
            })
    return out, gf


def pct(v):
    return fmt(v * 100 if v is not None else None, ".1f", "%")


def times(v):
    return fmt(v, ".2f", "×")


def gib(v):
    return fmt(v, ".1f")


def print_model(tag, model, rows, gf, any_mem):
    train = [r for r in rows if r["work"] == "train"]
    sample = [r for r in rows if r["work"] == "sample"]
    print(f"## {model} ({fmt(gf, '.2f')} GFLOPs per forward, DiT convention)\n")
    if train:
        t = train[0]["timing"]
        batches = sorted({r["batch"] for r in train})
        print(f"Training: batch {', '.join(map(str, batches))}; medians of {t['reps']} steps after {t['warmup']} warm-ups.\n")
        mem_h = " card GiB dddit / eager |" if any_mem else ""
        print("| precision | dddit ms/step | dddit img/s | dddit MFU | PyTorch eager ms | eager img/s | eager MFU | eager / dddit | torch.compile ms | compile MFU | compile / dddit |" + mem_h)
        print("|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if any_mem else ""))
        for r in train:
            mem = f" {gib(r['dddit_card_mem_peak_gib'])} / {gib(r['torch_eager_card_mem_peak_gib'])} |" if any_mem else ""
            flag = " (batches differ)" if r["batches_differ"] else ""
            flag += " (different cards)" if r["cards_differ"] else ""
            print(f"| {r['label']}{flag} | {fmt(r['dddit_ms'])} | {fmt(r['dddit_img_per_s'], '.0f')} | {pct(r['mfu'])} | {fmt(r['torch_eager_ms'])} | "
                  f"{fmt(r['torch_eager_img_per_s'], '.0f')} | {pct(r['torch_eager_mfu'])} | {times(r['ratio_eager'])} | {fmt(r['torch_compile_ms'])} | "
                  f"{pct(r['torch_compile_mfu'])} | {times(r['ratio_compile'])} |{mem}")
        print("\n`eager / dddit` and `compile / dddit` are PyTorch's time over dddit's: above 1, dddit is faster.\n")
    if sample:
        s = sample[0]
        batches = sorted({r["batch"] for r in sample})
        print(f"Sampling: one DDIM trajectory of {s['steps']} steps, batch {', '.join(map(str, batches))}, no guidance; "
              f"median of {s['timing']['sample_reps']} trajectories after 1 warm-up.\n")
        print("| precision | dddit ms/trajectory | dddit img/s | dddit MFU | PyTorch eager ms | eager img/s | eager MFU | eager / dddit |")
        print("|---|---|---|---|---|---|---|---|")
        for r in sample:
            flag = " (batches differ)" if r["batches_differ"] else ""
            print(f"| {r['label']}{flag} | {fmt(r['dddit_ms'])} | {fmt(r['dddit_img_per_s'])} | {pct(r['mfu'])} | {fmt(r['torch_eager_ms'])} | "
                  f"{fmt(r['torch_eager_img_per_s'])} | {pct(r['torch_eager_mfu'])} | {times(r['ratio_eager'])} |")
        print()


def print_routers(runs):
    for p in ("f32", "bf16", "tf32", "bf16-mixed"):
        r = runs.runs.get(f"dddit-routers-S2-{p}")
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


def print_before(before, after, paths_b, paths_a):
    key = lambda r: (r["model"], r["precision"], r["work"])
    b = {}
    for r in before:
        if r["dddit_ms"] is not None:
            b.setdefault(key(r), r)
    seen, lines = set(), []
    for r in after:
        k = key(r)
        if r["dddit_ms"] is None or k not in b or k in seen:
            continue
        seen.add(k)
        o = b[k]
        same = o["batch"] == r["batch"] and o.get("steps") == r.get("steps")
        sp = o["dddit_ms"] / r["dddit_ms"] if same else None
        te = f"{fmt(o['torch_eager_ms'])} → {fmt(r['torch_eager_ms'])}" if o["torch_precision"] == r["torch_precision"] else "—"
        lines.append(f"| {r['model']} | {r['precision']} | {r['work']} | {o['batch']}{'' if o['batch'] == r['batch'] else ' → ' + str(r['batch'])} | "
                     f"{fmt(o['dddit_ms'])} | {fmt(r['dddit_ms'])} | {times(sp)} | {te} |")
    print(f"## Before → after (`{' '.join(paths_b)}` → `{' '.join(paths_a)}`)\n")
    if not lines:
        print("No dddit measurement (model, precision, work) exists in both sets.\n")
        return
    print("dddit's median ms per training step or sampling trajectory; speed-up = before / after (only at")
    print("equal batch). PyTorch eager's times of the two runs show the machines' own difference.\n")
    print("| model | precision | work | batch | dddit ms before | after | speed-up | PyTorch eager ms before → after |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(lines) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dirs", nargs="+", help="run.sh output directories or their .tgz archives")
    ap.add_argument("--json", help="also write the rows as a JSON list here")
    ap.add_argument("--before", nargs="+", default=[], metavar="DIR", help="an earlier run's directories")
    a = ap.parse_args()
    runs = Runs(a.dirs)
    print("# GPU benchmark: dddit (LibTorch-CUDA) against PyTorch, same card\n")
    print("Produced by `bench/gpu/run.sh` (dddit built by `scripts/build-gpu.sh`), tables by")
    print("`python3 bench/gpu/report.py <out dirs>`; raw JSON and logs in `results/gpu/raw/`.")
    print(f"Read from: {', '.join(f'`{p}`' for p in a.dirs)}.\n")
    for csv, _ in runs.cards:
        print("Card (nvidia-smi):\n\n```\n" + csv + "\n```\n")
    names = sorted({c for _, c in runs.cards if c})
    if len(names) > 1:
        print(f"**These directories come from different cards ({', '.join(names)}): rows are marked where dddit and")
        print("PyTorch ran on different cards, and each MFU uses the peak of the card its run came from.**\n")
    for t in runs.torch_txt:
        print(f"PyTorch: {t}.\n")
    for c, peak in runs.peaks.items():
        if peak:
            on = f" on {c}" if len(runs.peaks) > 1 or len(names) > 1 else ""
            print(f"Matmul peak measured{on} by `torch_dit.py --matmul-peak` (8192² × 8192², best of 20): " + ", ".join(f"{k} {v:.0f} TFLOP/s" for k, v in peak.items()) + ".\n")
    all_rows, per_model = [], []
    for tag, model in runs.models():
        rows, gf = measure(runs, tag, model)
        all_rows += rows
        per_model.append((tag, model, rows, gf))
    precs = {r["precision"] for r in all_rows if r["dddit_ms"] is not None}
    adamw = sorted({r["torch_adamw"] for r in all_rows if r["torch_adamw"]})
    print("Inputs 32×32×4 (latent-sized), 1000 classes, learned σ; batches, repetitions and the sampling length")
    print("are given with each table. dddit's training step is `Trainer::step` (host batch upload, forward,")
    print("MSE + VB loss, backward, gradient norm, AdamW, EMA); PyTorch's is the official DiT loop (same work")
    print("without the norm)" + (f", with PyTorch's {' / '.join(adamw)} AdamW." if adamw else ".") + " Sampling: DDIM, no guidance.")
    if "bf16-mixed" in precs:
        print("dddit `bf16-mixed` keeps the weights, the AdamW state, LayerNorm, the residual stream and the loss in")
        print("f32 and runs the matmuls and the attention in bf16, like PyTorch's autocast (`bf16-autocast`), its")
        print("counterpart here.")
    if "bf16" in precs:
        print("dddit `bf16` is pure bf16 (weights and AdamW state too); PyTorch is run both pure (`bf16-pure`)")
        print("and with autocast (f32 weights).")
    any_mem = any(r["dddit_card_mem_peak_gib"] is not None or r["torch_eager_card_mem_peak_gib"] is not None for r in all_rows)
    print("MFU: measured img/s × FLOPs per image (training 3 × forward, sampling steps × forward, 2 FLOPs per")
    print("multiply-add) over the matmul peak above for the precision's matmul type (tf32 → tf32; bf16-mixed,")
    print("bf16 and autocast → bf16)." + (" `card GiB`: the card's used memory at its peak during the run (nvidia-smi," if any_mem else "\n"))
    if any_mem:
        print("every 200 ms; the whole process: weights, optimiser state, activations and the allocator's cache).\n")
    for tag, model, rows, gf in per_model:
        print_model(tag, model, rows, gf, any_mem)
    print_routers(runs)
    if a.before:
        before = Runs(a.before)
        brows = [r for tag, model in before.models() for r in measure(before, tag, model)[0]]
        print_before(brows, all_rows, a.before, a.dirs)
    if a.json:
        keep = ("model", "precision", "backend", "work", "dddit_ms", "torch_eager_ms", "torch_compile_ms", "ratio_eager", "ratio_compile")
        out = [{**{k: r[k] for k in keep}, **{k: v for k, v in r.items() if k not in keep and k != "label"}} for r in all_rows]
        tmp = a.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(out, f, indent=1)
            f.write("\n")
        os.replace(tmp, a.json)


if __name__ == "__main__":
    main()
