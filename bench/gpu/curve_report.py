"""Quality against training steps from bench/gpu/curve.sh's output (issue 20, item 1).

    COMMIT=<sha> python3 bench/gpu/curve_report.py CURVE_TGZ_OR_DIR OUTDIR

Reads every run directory of the collected tree (eval-step-N.json per EMA snapshot,
metrics.jsonl, run.json, config.toml, samples) and writes into OUTDIR:
  - <run>/: the run's small files as they came back (no checkpoint or snapshot weights);
  - curve.md: per snapshot step the images seen, epochs, the mean diffusion loss of the 500 steps
    before it, Inception FD / precision / recall, classifier FD and class accuracy of the samples;
    then the plateau test of issue 20 (FID of the last two snapshots within 5 % of each other,
    and FID <= 15 on 10k samples), answered from the numbers, and what is missing;
  - curve.json: the same rows, machine-readable;
  - curve.png: Inception FD and classifier accuracy against steps, and the training loss.
"""

import glob
import json
import os
import re
import shutil
import sys
import tarfile
import tempfile

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

TRAIN_IMAGES = 60000  # Fashion-MNIST training split


def feature(ev, prefix):
    for f in ev.get("features", []):
        if f["extractor"].startswith(prefix):
            return f
    return None


def loss_before(metrics, step, window=500):
    vals = [terms.get("diffusion", loss) for s, loss, terms in metrics if step - window < s <= step]
    return sum(vals) / len(vals) if vals else None


def load_run(d):
    metrics = []
    p = os.path.join(d, "metrics.jsonl")
    if os.path.exists(p):
        for line in open(p):
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut off by the machine going back
            if "step" in r and "loss" in r:
                metrics.append((r["step"], r["loss"], dict(r.get("terms", {}))))
    batch = None
    cfg = os.path.join(d, "config.toml")
    if os.path.exists(cfg):
        m = re.search(r"^batch_size\s*=\s*(\d+)", open(cfg).read(), re.M)
        batch = int(m.group(1)) if m else None
    rows = []
    for p in glob.glob(os.path.join(d, "eval-step-*.json")):
        step = int(re.search(r"eval-step-(\d+)\.json$", p).group(1))
        ev = json.load(open(p))
        inc, clf = feature(ev, "inception"), feature(ev, "classifier")
        acc = (ev.get("class_accuracy") or [{}])[0]
        rows.append(
            {
                "step": step,
                "images": step * batch if batch else None,
                "epochs": step * batch / TRAIN_IMAGES if batch else None,
                "loss_500": loss_before(metrics, step),
                "fd_inception": inc["fd"] if inc else None,
                "precision": inc["precision_recall"]["precision"] if inc else None,
                "recall": inc["precision_recall"]["recall"] if inc else None,
                "samples": inc["generated"] if inc else None,
                "reference": inc["reference"] if inc else None,
                "fd_classifier": clf["fd"] if clf else None,
                "class_accuracy": acc.get("accuracy"),
                "judge_accuracy_on_real": acc.get("judge_accuracy_on_real"),
                "sampler": ev["settings"]["sample"],
                "eval_seconds": ev.get("seconds"),
            }
        )
    rows.sort(key=lambda r: r["step"])
    failed = sorted(int(re.search(r"(\d+)\.failed$", p).group(1)) for p in glob.glob(os.path.join(d, "*.failed")))
    return metrics, rows, failed


def fmt(v, spec):
    return "—" if v is None else format(v, spec)


def main():
    src, out = sys.argv[1], sys.argv[2]
    commit = os.environ.get("COMMIT", "unknown")
    tmp = None
    if os.path.isfile(src):
        tmp = tempfile.mkdtemp()
        with tarfile.open(src) as t:
            t.extractall(tmp, filter="data")
        src = tmp
    os.makedirs(out, exist_ok=True)
    runs = sorted(os.path.dirname(p) for p in glob.glob(os.path.join(src, "*", "run.json")))
    md = [
        "# Dense baseline: quality against training steps (issue 20, item 1)",
        "",
        f"Commit `{commit}`. Made by `bench/gpu/science.sh start` + `bench/gpu/curve.sh` "
        "(experiment `experiments/gpu/dense-baseline.toml`), this file by "
        f"`COMMIT={commit} python3 bench/gpu/curve_report.py curve.tgz {out}`.",
        "",
        "Each row evaluates the EMA weights kept at that step (`train.snapshots`): samples drawn with "
        "the sampler below, Fréchet distance on the TF-Inception pool3 features (FID) with Inception "
        "precision/recall (k = 3), the Fréchet distance on the Fashion-MNIST classifier's features, and "
        "the classifier's accuracy on the samples' conditioning labels. The loss is the mean diffusion "
        "loss (MSE + variational bound) of the 500 training steps up to the snapshot.",
        "",
    ]
    summary = []
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), dpi=120)
    for d in runs:
        name = os.path.basename(d)
        metrics, rows, failed = load_run(d)
        dest = os.path.join(out, name)
        if os.path.abspath(dest) != os.path.abspath(d):
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(d, dest, ignore=shutil.ignore_patterns("checkpoint*", "snapshots"))
        last = metrics[-1][0] if metrics else 0
        done = os.path.exists(os.path.join(d, "done.json"))
        md += [f"## {name}", ""]
        if rows:
            s = rows[0]["sampler"]
            md.append(
                f"{rows[0]['samples']} samples against {rows[0]['reference']} real training images; "
                f"{s['sampler']} sampler, {s['steps']} steps, CFG {s['cfg_scale']}, seed {s['seed']}. "
                f"Training reached step {last}{' (finished)' if done else ' (not finished)'}."
            )
            md.append("")
        md += [
            "| step | images | epochs | loss (500 steps) | FID (Inception) | precision | recall | FD (classifier) | class accuracy |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            md.append(
                f"| {r['step']} | {fmt(r['images'], ',')} | {fmt(r['epochs'], '.1f')} | {fmt(r['loss_500'], '.4f')} "
                f"| {fmt(r['fd_inception'], '.2f')} | {fmt(r['precision'], '.3f')} | {fmt(r['recall'], '.3f')} "
                f"| {fmt(r['fd_classifier'], '.2f')} | {fmt(r['class_accuracy'], '.3f')} |"
            )
        md.append("")
        if rows and rows[0]["judge_accuracy_on_real"] is not None:
            md += [f"The classifier's accuracy on real test images: {rows[0]['judge_accuracy_on_real']:.3f}.", ""]
        if failed:
            md += [f"Evaluations that failed (see the watcher log): steps {failed}.", ""]
        fids = [r for r in rows if r["fd_inception"] is not None]
        verdict = []
        if len(fids) >= 2:
            a, b = fids[-2]["fd_inception"], fids[-1]["fd_inception"]
            rel = abs(b - a) / a
            verdict.append(
                f"- Last two snapshots (steps {fids[-2]['step']} and {fids[-1]['step']}): FID {a:.2f} → {b:.2f}, "
                f"{100 * rel:.1f} % apart: {'within' if rel <= 0.05 else 'not within'} 5 %."
            )
        if fids:
            best = min(fids, key=lambda r: r["fd_inception"])
            verdict.append(
                f"- FID ≤ 15 on {fids[-1]['samples']} samples: "
                f"{'reached' if best['fd_inception'] <= 15 else 'not reached'} "
                f"(best {best['fd_inception']:.2f} at step {best['step']})."
            )
            plateau = len(fids) >= 4 and abs(fids[-1]["fd_inception"] - fids[-2]["fd_inception"]) / fids[-2]["fd_inception"] <= 0.05 and fids[-1]["fd_inception"] <= 15
            verdict.append(
                f"- Plateau by issue 20's test (≥ 4 snapshots, the last two within 5 %, FID ≤ 15): "
                f"**{'yes' if plateau else 'no'}** ({len(fids)} snapshots evaluated)."
            )
        md += ["Plateau test:", ""] + verdict + [""]
        summary.append({"run": name, "trained_to": last, "finished": done, "rows": rows, "failed": failed})
        if fids:
            axes[0].plot([r["step"] for r in fids], [r["fd_inception"] for r in fids], "o-", label=f"{name} FID")
            ax2 = axes[0].twinx()
            acc = [r for r in fids if r["class_accuracy"] is not None]
            ax2.plot([r["step"] for r in acc], [r["class_accuracy"] for r in acc], "s--", color="tab:green", label="class accuracy")
            ax2.set_ylabel("class accuracy of samples", color="tab:green")
        if metrics:
            k = 100
            st = [m[0] for m in metrics]
            lo = [m[2].get("diffusion", m[1]) for m in metrics]
            sm = [sum(lo[max(0, i - k + 1) : i + 1]) / (i + 1 - max(0, i - k + 1)) for i in range(len(lo))]
            axes[1].plot(st, sm, label=name)
    axes[0].set_xlabel("training step")
    axes[0].set_ylabel("FID (Inception, 10k vs 10k)")
    axes[0].axhline(15, color="grey", ls=":", lw=1)
    axes[0].set_title("EMA snapshots")
    axes[1].set_xlabel("training step")
    axes[1].set_ylabel("diffusion loss (100-step mean)")
    axes[1].set_yscale("log")
    axes[1].set_title("training loss")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "curve.png"))
    with open(os.path.join(out, "curve.json"), "w") as f:
        json.dump({"commit": commit, "runs": summary}, f, indent=1)
    with open(os.path.join(out, "curve.md"), "w") as f:
        f.write("\n".join(md))
    print("\n".join(md))
    if tmp:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
