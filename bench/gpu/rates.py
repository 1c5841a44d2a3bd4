"""Throughput from two timed `dddit train` runs (bench/gpu/env.sh's timed_train): the extra
images of the longer run over its extra seconds, both trained from scratch, so that start-up,
data loading, the first steps' kernel selection and the final checkpoint cancel out."""
import glob
import json
import os
import re


def run(src, name):
    """(seconds, steps, global batch, losses) of run NAME in SRC; None if it did not finish."""
    try:
        secs = float(open(os.path.join(src, name + ".time")).read())
        toml = open(os.path.join(src, name + ".toml")).read()
        losses = [json.loads(l)["loss"] for l in open(os.path.join(src, name + ".metrics.jsonl"))]
    except (OSError, ValueError):
        return None
    steps = int(re.search(r"^steps = (\d+)", toml, re.M).group(1))
    batch = int(re.search(r"^batch_size = (\d+)", toml, re.M).group(1))
    if len(losses) != steps:
        return None
    return secs, steps, batch, losses


def rate(src, prefix, copies=1):
    """Images per second of the runs PREFIX-S1 and PREFIX-S2 (S1 < S2 steps), times COPIES
    (runs of that name that ran at once, each timed alike); and the two runs."""
    names = sorted({os.path.basename(p)[: -len(".time")] for p in glob.glob(os.path.join(src, prefix + "-*.time"))},
                   key=lambda n: int(n.rsplit("-", 1)[1]))
    runs = [run(src, n) for n in names]
    if len(runs) != 2 or None in runs:
        return None, runs
    (t1, s1, b, _), (t2, s2, _, _) = runs
    return copies * (s2 - s1) * b / (t2 - t1), runs
